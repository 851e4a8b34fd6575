"""Fixtures shared by every kind of test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchdrop.platform.config import PlatformConfig, parse_platform_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_SPECS = sorted((EXAMPLES / "specs").iterdir())
EVENTS = ROOT / "events"
INTEGRATION = Path(__file__).resolve().parent / "integration"


def load_event(name: str) -> Any:
    """A committed sample event, `events/<function>/<name>.json` named as `"track/state-change-running"`:
    real-shaped (AWS's own samples), shared by the unit and integration tests."""
    return json.loads((EVENTS / f"{name.removesuffix('.json')}.json").read_text())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration talks to the emulator: marked so (`pytest -m integration`,
    `-m "not integration"`), whatever its module says."""
    for item in items:
        if INTEGRATION in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def platform_config() -> PlatformConfig:
    return parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
