"""docs/spec.md and docs/spec.schema.json explain every field and every error, and cannot drift from the code:
the field tables are generated from the models, the errors tables are checked against the layer's source."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, TypeAdapter

from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.model import JobSpec
from batchdrop_cli import spec_reference
from batchdrop_cli.spec_reference import errors_table_problems, main, problem_codes, render
from tests.conftest import ROOT

SPEC_MD = ROOT / "docs" / "spec.md"


def test_the_field_tables_of_docs_spec_md_are_current() -> None:
    text = SPEC_MD.read_text()
    assert render(text) == text, "stale: run .venv/bin/python -m batchdrop_cli.spec_reference"


def test_the_generators_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_every_problem_code_is_in_an_errors_table_and_every_code_there_is_given() -> None:
    assert errors_table_problems(SPEC_MD.read_text()) == []


def test_the_walk_finds_codes_however_the_layer_passes_them() -> None:
    """One code of each way a problem is made, so a walk that silently finds nothing cannot pass."""
    found = problem_codes()
    assert {
        "file_type",  # Problem(code="...")
        "empty",  # _whole_file("...", message)
        "too_deep",  # builder.problem(node, loc, "...", message)
        "duplicate_key",  # builder.report(node, loc, "...", message)
        "cycle",  # a finding: (where, "...", message)
        "unknown_field",  # explain: return "...", message
        "invalid",  # explain: return "...", cut(message)
        "gpu_queue_without_gpus",  # the platform config's finding
    } <= found.keys()
    assert Path("platform/config.py") in found["unknown_queue"]
    assert "command" not in found, "a path such as (*loc, 'command', i) is not a finding"


def test_a_new_code_without_a_row_fails_the_check_and_a_row_without_a_code_too(tmp_path: Path) -> None:
    layer = tmp_path / "batchdrop"
    (layer / "spec").mkdir(parents=True)
    (layer / "platform").mkdir()
    (layer / "spec" / "rules.py").write_text(
        "def check(where):\n"
        "    return [(where, 'brand_new', f'a new rule at {where}'), (where, 'cycle', 'steps in a circle')]\n"
    )
    (layer / "platform" / "config.py").write_text("X = Problem(path='', code='unknown_queue', message='no queue')\n")
    document = (
        "<!-- checked: spec errors -->\n| code | meaning |\n| --- | --- |\n| `cycle` | a circle |\n"
        "| `gone_code` | removed |\n<!-- end checked -->\n"
        "<!-- checked: platform config errors -->\n| `unknown_queue` | no queue |\n<!-- end checked -->\n"
    )
    assert errors_table_problems(document, layer) == [
        "spec errors: `brand_new` is given but not in the table",
        "spec errors: `gone_code` is in the table but never given",
    ]


def test_check_fails_on_a_stale_reference_and_writing_it_makes_it_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = SPEC_MD.read_text().replace("| `resources.gpus` | integer | `0` |", "| `resources.gpus` | integer | `2` |")
    assert stale != SPEC_MD.read_text()
    reference = tmp_path / "spec.md"
    reference.write_text(stale)

    assert main(["--check", "--path", str(reference)]) == 1
    assert "stale" in capsys.readouterr().err
    assert reference.read_text() == stale, "--check changes nothing"

    assert main(["--path", str(reference)]) == 0
    assert reference.read_text() == SPEC_MD.read_text()
    assert main(["--check", "--path", str(reference)]) == 0


def test_a_reference_without_its_markers_is_an_error_not_a_silent_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "spec.md"
    reference.write_text(SPEC_MD.read_text().replace("<!-- generated: job settings -->", ""))
    assert main(["--check", "--path", str(reference)]) == 1
    assert "<!-- generated: job settings -->" in capsys.readouterr().err


def test_the_reference_documents_the_sweep_codes_of_today_and_links_the_sweeps_guide() -> None:
    text = SPEC_MD.read_text()
    assert "`sweep_definition_command`" in text
    assert "sweep_needs_command" not in text
    assert "(sweeps.md)" in text


MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)")


@pytest.mark.parametrize("path", [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))], ids=lambda p: p.name)
def test_the_docs_never_point_outside_the_repository(path: Path) -> None:
    text = path.read_text()
    assert "../shared" not in text
    for target in MARKDOWN_LINK.findall(text):
        if "://" not in target and not target.startswith("mailto:"):
            assert (path.parent / target).resolve().is_relative_to(ROOT), f"{path.name} links to {target}"


def _schema_properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from ((f"spec.{name}", prop) for name, prop in schema["properties"].items())
    for model, definition in schema["$defs"].items():
        yield from ((f"{model}.{name}", prop) for name, prop in definition.get("properties", {}).items())


PUBLISHED_SCHEMA = json.loads((ROOT / "docs" / "spec.schema.json").read_text())


@pytest.mark.parametrize(("where", "prop"), list(_schema_properties(PUBLISHED_SCHEMA)), ids=lambda x: str(x)[:40])
def test_every_field_of_the_schema_explains_itself_on_hover_with_an_example_that_is_valid(
    where: str, prop: dict[str, Any]
) -> None:
    assert len(prop.get("description", "")) > 10, f"{where} has no description"
    assert prop.get("examples"), f"{where} has no example"
    validator = jsonschema.Draft202012Validator({"$defs": PUBLISHED_SCHEMA["$defs"], **prop})
    for example in prop["examples"]:
        assert not list(validator.iter_errors(example)), f"{where}: example {example!r} breaks its own schema"


def _model_fields(model: type[BaseModel]) -> Iterator[tuple[str, Any]]:
    for name, field in model.model_fields.items():
        yield f"{model.__name__}.{name}", field
        nested, _ = spec_reference.nested_model(spec_reference.annotated(field))
        if nested is not None:
            yield from _model_fields(nested)


@pytest.mark.parametrize(("where", "field"), list(_model_fields(PlatformConfig)), ids=lambda x: str(x)[:40])
def test_every_field_of_the_platform_config_has_a_description_and_a_valid_example(where: str, field: Any) -> None:
    assert field.description, f"{where} has no description"
    assert field.examples, f"{where} has no example"
    adapter: TypeAdapter[Any] = TypeAdapter(spec_reference.annotated(field))
    for example in field.examples:
        adapter.validate_python(example, strict=True)


def test_every_field_of_the_spec_model_has_a_description_and_an_example() -> None:
    missing = [where for where, field in _model_fields(JobSpec) if not (field.description and field.examples)]
    assert missing == []
