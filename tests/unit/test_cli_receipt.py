"""What `batchdrop submit` and `batchdrop rerun` print of a receipt: each step submitted, reused whole, or
(a sweep resumed in part) the children it runs and those it reuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from batchdrop.gateways.bucket import locate_drop
from batchdrop.store.records import Receipt, SpecSource, SubmittedJobRef
from batchdrop_cli.stack import _print_receipt
from batchdrop_cli.uploads import Upload

SOURCE = SpecSource(bucket="jobs", key="incoming/vision/grid.yaml")


def test_a_sweep_resumed_in_part_says_how_many_children_it_runs_and_reuses(capsys: pytest.CaptureFixture[str]) -> None:
    location = locate_drop(SOURCE.key)
    assert location is not None
    common: dict[str, Any] = {"queue": "gpu-shared", "hardware": "gpu"}
    receipt = Receipt(
        status="submitted",
        run_id="run2",
        team="vision",
        spec_name="grid",
        source=SOURCE,
        received_at=datetime(2026, 11, 30, tzinfo=UTC),
        jobs=[
            SubmittedJobRef(step="prep", job_id="j0", job_name="grid-prep-run1", reused_from="run1", **common),
            SubmittedJobRef(
                step="grid",
                job_id="j1",
                job_name="grid-grid-run2",
                array_size=40,
                reused_children=960,
                reused_children_from="run1",
                **common,
            ),
            SubmittedJobRef(
                step="last",
                job_id="j2",
                job_name="grid-last-run2",
                reused_children=11,
                reused_children_from="run1",
                **common,
            ),
        ],
        follow="batchdrop status run2",
    )
    _print_receipt(receipt, Upload(source=SOURCE, location=location, run_id="run2"))
    out = capsys.readouterr().out
    assert "prep             reused (run run1, job j0)" in out
    assert "job j1 (40 children; 960 reused from run run1)" in out
    assert "job j2 (1 child; 11 reused from run run1)" in out
