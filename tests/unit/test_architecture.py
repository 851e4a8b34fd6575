"""The structure docs/architecture.md describes, kept: dependencies point down the flow, the Lambda
layer holds only what functions import, and no module or class grows past its room."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "shared" / "batchdrop"
LEVELS = {
    "limits": 0,
    "units": 0,
    "errors": 1,
    "spec": 2,
    "events": 2,
    "platform": 3,
    "store": 4,
    "gateways": 5,
    "submit": 6,
    "track": 6,
    "publish": 6,
    "notify": 6,
    "report": 7,
    "wiring": 8,
}
"""Each part of the domain, by how far down the flow it sits: a module may import its own part and the
parts below it, never one above, and never a sibling flow (submit, track, publish, notify)."""
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300


def part_of(module: str) -> str:
    """`batchdrop.store.items` -> `store`."""
    return module.removeprefix("batchdrop.").split(".")[0]


def modules() -> list[Path]:
    return sorted(LAYER.rglob("*.py"))


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("batchdrop."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("batchdrop.")}
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(LAYER)))
def test_a_module_imports_only_its_own_part_and_the_parts_below_it(path: Path) -> None:
    relative = path.relative_to(LAYER)
    own = relative.parts[0].removesuffix(".py")
    if own == "__init__":
        return
    assert own in LEVELS, f"{relative}: a new part of the domain belongs in docs/architecture.md and LEVELS"
    for module in imported(path):
        other = part_of(module)
        if other == own:
            continue
        assert LEVELS[other] < LEVELS[own], f"{relative} imports {module}: upward or sideways"


def test_the_lambda_layer_holds_no_command_line() -> None:
    names = {path.stem for path in modules()}
    assert not names & {"cli", "cli_stack", "operations", "main", "stack"}
    assert all("argparse" not in path.read_text() for path in modules())
    assert (ROOT / "cli" / "batchdrop_cli" / "main.py").exists()


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(LAYER)))
def test_no_module_or_class_grows_past_its_room(path: Path) -> None:
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.name}: split it along its responsibilities"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, f"{path.name}: class {node.name} has {lines} lines"
