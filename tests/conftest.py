"""Fixtures shared by every kind of test."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchdrop.platform.config import PlatformConfig, parse_platform_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_SPECS = sorted((EXAMPLES / "specs").iterdir())
EVENTS = ROOT / "events"


@pytest.fixture(scope="session")
def platform_config() -> PlatformConfig:
    return parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
