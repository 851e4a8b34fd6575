"""The submit function as the fault tests (tests/faults.py) drive it: how it is invoked, and its Batch
gateway's back-off waits recorded instead of slept, so a fault that makes it wait costs the test nothing."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import pytest

Invoke = Callable[[dict[str, Any]], Any]
"""The `submit_function` fixture's handler: an event in, its response out."""


def no_waiting(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The gateway's own back-off waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(module.submitter.batch, "sleep", waits.append)
    return waits


class UnsleptSubmit(NamedTuple):
    """The `unslept_submit` fixture: the submit function's module, its handler, and the back-off waits its
    Batch gateway recorded instead of sleeping them."""

    module: ModuleType
    invoke: Invoke
    waits: list[float]
