"""A sweep's job record keeps its axes and values (for the report's failed children), whole or not at all:
never so large that every update of the record costs more than it should (`limits.SWEEP_RECORD_BYTES`)."""

from __future__ import annotations

import json

from batchdrop.limits import SWEEP_RECORD_BYTES
from batchdrop.spec.sweep import child_values
from batchdrop.store.records import kept_sweep


def test_a_sweep_is_kept_whole_in_the_specs_order() -> None:
    sweep = {"lr": ["0.1", "0.01"], "batch": ["32", "64"]}
    kept = kept_sweep(sweep)
    assert kept == sweep
    assert list(kept) == ["lr", "batch"]
    assert child_values(kept, 3) == {"lr": "0.01", "batch": "64"}


def test_a_sweep_over_its_bound_is_not_kept() -> None:
    values = [f"s3://bucket/experiments/{index:05d}/" + "x" * 60 for index in range(5_000)]
    assert len(json.dumps({"experiment": values}).encode()) > SWEEP_RECORD_BYTES
    assert kept_sweep({"experiment": values, "seed": ["1", "2"]}) is None


def test_no_sweep_keeps_nothing() -> None:
    assert kept_sweep(None) is None
    assert kept_sweep({}) is None
