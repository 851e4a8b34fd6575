"""SnapStart's restore hooks (docs/operations.md, SnapStart): instances restored from one snapshot
must not share what has to be their own."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable

import pytest
from pydantic import BaseModel, ConfigDict, create_model

from batchdrop.gateways.batch import BatchGateway
from batchdrop.wiring.snapstart import build_validators, register_snapshot_hooks, reseed_random


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


def test_the_hooks_are_registered_where_lambda_offers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    before_snapshot: list[Callable[[], object]] = []
    after_restore: list[Callable[[], None]] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = before_snapshot.append  # type: ignore[attr-defined]
    runtime.register_after_restore = after_restore.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    register_snapshot_hooks()
    assert before_snapshot == [build_validators]
    assert after_restore == [reseed_random]


def built(model: type[BaseModel]) -> bool:
    return model.__pydantic_complete__


def test_before_the_snapshot_the_deferred_validators_are_built_so_a_restored_instance_does_not() -> None:
    deferred = create_model(
        "Deferred", __module__="batchdrop.snapshot_fixture", __config__=ConfigDict(defer_build=True), name=(str, ...)
    )
    unresolvable = create_model(
        "Unresolvable",
        __module__="batchdrop.snapshot_fixture",
        __config__=ConfigDict(defer_build=True),
        ref=("Nowhere", ...),  # type: ignore[arg-type, maybe-unrecognized-str-typeform]
    )
    assert not built(deferred)

    assert build_validators() >= 1  # and no error for the model that cannot be built before its first use
    assert built(deferred)
    assert deferred.model_validate({"name": "ok"}).name == "ok"  # type: ignore[attr-defined]
    assert not built(unresolvable)
    assert build_validators() == 0  # nothing left that can be built


def test_without_lambdas_runtime_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # an import of it raises ImportError
    register_snapshot_hooks()  # no error: there is no snapshot outside Lambda
