"""SnapStart's restore hooks (docs/operations.md, SnapStart): instances restored from one snapshot
must not share what has to be their own."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable

import pytest

from batchdrop.gateways.batch import BatchGateway
from batchdrop.wiring.snapstart import refresh_after_restore, reseed_random


def backoff_waits() -> list[float]:
    """The waits the Batch gateway's throttling back-off draws, as one instance would."""
    waits: list[float] = []
    gateway = BatchGateway(client=None, sleep=waits.append)  # type: ignore[arg-type]
    for attempt in range(5):
        gateway._backoff(attempt)  # the draw itself is what must differ
    return waits


def test_two_instances_restored_from_one_snapshot_back_off_differently_once_reseeded() -> None:
    snapshot = random.getstate()
    random.setstate(snapshot)
    first_unseeded = backoff_waits()
    random.setstate(snapshot)
    assert backoff_waits() == first_unseeded, "copies of one snapshot draw the same waits"

    random.setstate(snapshot)
    reseed_random()
    first = backoff_waits()
    random.setstate(snapshot)
    reseed_random()
    assert backoff_waits() != first


def test_the_hook_is_registered_where_lambda_offers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[Callable[[], None]] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    refresh_after_restore()
    assert registered == [reseed_random]


def test_without_lambdas_runtime_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # an import of it raises ImportError
    refresh_after_restore()  # no error: there is no snapshot outside Lambda
