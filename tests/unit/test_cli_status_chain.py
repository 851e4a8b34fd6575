"""`batchdrop status` tells each recovered step's whole chain on one line, and names a reused step's run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef
from batchdrop_cli.run_views import RunReader, RunView
from batchdrop_cli.stack import _print_view
from tests.recordkit import run_record
from tests.unit.test_recovery_chain import GIB, by_id, job, oom_due


class Jobs:
    """The records table as `RunReader.view` reads it: a run and job records by id."""

    def __init__(self, run: RunRecord, jobs: dict[str, JobRecord]) -> None:
        self.run, self.jobs, self.table_name = run, jobs, "records"

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.run if run_id == self.run.run_id else None

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        return {job_id: self.jobs[job_id] for job_id in job_ids if job_id in self.jobs}


def status_view(run: RunRecord, *jobs: JobRecord) -> RunView:
    """The view `batchdrop status` prints of `run`, its jobs read from a table holding `jobs`."""
    table: Any = Jobs(run, by_id(*jobs))
    unused: Any = None  # status reads only the table
    return RunReader(table=table, batch=unused).view(run.run_id)


def test_status_shows_a_recovered_steps_chain_and_a_reused_steps_run(capsys: pytest.CaptureFixture[str]) -> None:
    prep = job("old-prep", memory=4096, status="SUCCEEDED", step="prep")
    failed = job("t1", memory=16 * GIB, status="FAILED", attempts=1, recovery=oom_due(1, 32 * GIB), recovered_by="t2")
    train = job("t2", memory=32 * GIB, status="RUNNING", attempts=1, recovers="t1")
    reused_prep = SubmittedJobRef.of(prep).model_copy(update={"reused_from": "run-before"})
    run = run_record([reused_prep, SubmittedJobRef.of(train, ["prep"])], status="running")
    view = status_view(run, prep, failed, train)
    _print_view(view)
    out = capsys.readouterr().out

    assert "  train:\n    recovery: attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → running" in out
    assert "  prep:\n    reused from run run-before (its usage is counted there)" in out
    document = view.as_json()
    assert [each["recovery_chain"] for each in document["jobs"]] == [
        None,
        "attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → running",
    ]


def test_a_view_of_jobs_never_recovered_reads_no_chain() -> None:
    run = run_record(run_id="r", status="running")
    view = RunView(run=run, jobs=[job("a", memory=4096, status="RUNNING")])
    assert view.story(view.jobs[0]) is None
