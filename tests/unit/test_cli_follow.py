"""`--follow` prints a run's news in the order it happened, even when one is written a moment late."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef, Transition
from batchdrop_cli.following import RunFollower
from batchdrop_cli.run_views import RunReader
from tests.recordkit import T0, job_record, run_record


def seconds(value: float) -> datetime:
    return T0 + timedelta(seconds=value)


class GrowingTable:
    """The table as a follower reads it: histories that grow between looks, and the run that ends."""

    table_name = "records"

    def __init__(self) -> None:
        self.jobs = {"a": job_record("a", "prep"), "b": job_record("b", "train")}
        self.run = run_record([SubmittedJobRef.of(job) for job in self.jobs.values()], status="running")
        self.histories: dict[str, list[Transition]] = {
            "a": [Transition(status="SUBMITTED", at=seconds(1)), Transition(status="RUNNING", at=seconds(8))],
            "b": [Transition(status="SUBMITTED", at=seconds(1))],
        }

    def get_run(self, run_id: str) -> RunRecord:
        return self.run

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        return {job_id: self.jobs[job_id] for job_id in job_ids}

    def get_history(self, job_id: str) -> list[Transition]:
        return sorted(self.histories[job_id], key=lambda item: item.at)


def test_news_written_late_still_comes_in_its_place() -> None:
    table = GrowingTable()
    now = [seconds(10)]
    looks = [0]

    def sleep(_: float) -> None:
        looks[0] += 1
        now[0] += timedelta(seconds=2)
        if looks[0] == 1:  # b's RUNNING at 6 s is written after the first look saw a's RUNNING at 8 s
            table.histories["b"].append(Transition(status="RUNNING", at=seconds(6)))
        if looks[0] == 2:
            table.run = table.run.model_copy(update={"status": "succeeded"})

    records: Any = table
    follower = RunFollower(
        runs=RunReader(table=records, batch=cast(Any, None)), table=records, clock=lambda: now[0], sleep=sleep
    )
    printed = [
        (moment, job.step, transition.status if transition else "children")
        for progress in follower.watch("r1")
        for moment, job, transition in progress.events
    ]
    assert printed == [
        (seconds(1), "prep", "SUBMITTED"),
        (seconds(1), "train", "SUBMITTED"),
        (seconds(6), "train", "RUNNING"),
        (seconds(8), "prep", "RUNNING"),
    ]
