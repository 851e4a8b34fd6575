"""`batchdrop status` says where a RUNNABLE job stands in its queue, in the stuck advice's own words; a
status Batch does not answer for is printed without them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from batchdrop.gateways.batch import BatchUnavailable
from batchdrop.gateways.queue_state import EnvironmentState, QueuePlace
from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef
from batchdrop_cli.run_views import RunReader
from batchdrop_cli.stack import _print_view
from tests.unit.test_queue_place import runnable_job

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
FULL = EnvironmentState(name="gpu-spot", status="VALID", state="ENABLED", max_vcpus=64, desired_vcpus=64)


class Records:
    """The records table as `RunReader.view` reads it."""

    def __init__(self, run: RunRecord, jobs: list[JobRecord]) -> None:
        self.run, self.jobs, self.table_name = run, {job.job_id: job for job in jobs}, "records"

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.run if run_id == self.run.run_id else None

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        return {job_id: self.jobs[job_id] for job_id in job_ids if job_id in self.jobs}

    def with_history(self, job: JobRecord) -> JobRecord:
        return job


class Queues:
    """Batch as `status` asks it where a job stands."""

    def __init__(self, place: QueuePlace | Exception) -> None:
        self.place = place
        self.asked: list[str] = []

    def queue_position(self, queue_arn: str, job_id: str) -> QueuePlace:
        self.asked.append(job_id)
        if isinstance(self.place, Exception):
            raise self.place
        return self.place

    def compute_environments_state(self, queue: str) -> list[EnvironmentState]:
        return [FULL]


def reader_for(batch: Queues) -> RunReader:
    waiting = runnable_job("j1", since=T0)
    running = runnable_job("j0", since=T0).model_copy(update={"status": "RUNNING", "step": "prep"})
    run = RunRecord(
        run_id="r1",
        team="vision",
        status="running",
        source=waiting.source,
        received_at=T0,
        claim_owner="m",
        claimed_at=T0,
        jobs=[SubmittedJobRef.of(running), SubmittedJobRef.of(waiting, ["prep"])],
    )
    table: Any = Records(run, [running, waiting])
    return RunReader(table=table, batch=cast(Any, batch))


def test_status_says_where_a_runnable_job_stands(capsys: pytest.CaptureFixture[str]) -> None:
    batch = Queues(QueuePlace(position=12, listed=40))
    view = reader_for(batch).view("r1", with_history=True, with_standing=True)
    _print_view(view)
    out = capsys.readouterr().out
    assert (
        "  main:\n    where it stands: 12th in gpu-shared; the queue's environment gpu-spot is at its maximum "
        "of 64 vCPUs: your job starts as others finish"
    ) in out
    assert batch.asked == ["j1"], "only the RUNNABLE job is asked about"
    assert [each["standing"] for each in view.as_json()["jobs"]] == [
        None,
        "12th in gpu-shared; the queue's environment gpu-spot is at its maximum of 64 vCPUs: "
        "your job starts as others finish",
    ]


def test_a_status_batch_will_not_answer_for_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    batch = Queues(BatchUnavailable("throttled"))
    view = reader_for(batch).view("r1", with_history=True, with_standing=True)
    _print_view(view)
    out = capsys.readouterr().out
    assert "where it stands: the queue's environment gpu-spot is at its maximum of 64 vCPUs" in out


def test_follow_and_other_views_do_not_ask_batch() -> None:
    batch = Queues(QueuePlace(position=1, listed=1))
    view = reader_for(batch).view("r1")
    assert view.standing == {}
    assert batch.asked == []
