"""Recoveries: the records the submit function writes when it replaces a failed job (docs/recovery.md):
the new jobs' records, the run's job references moved onto them, and `recovered_by` on the jobs they
replace; each write conditional, so a redelivered stream record repeats them harmlessly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from batchdrop.store.items import (
    RETENTION,
    batch_write,
    conditionally,
    expiry,
    history_item,
    job_item,
    job_key,
    read_job,
    read_jobs,
    read_run,
    run_key,
    serialize,
    sweep_items,
)
from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_RUN = ("submitted", "running")
"""A run in one of these has not ended: its jobs may still be replaced."""


@dataclass
class Recoveries:
    """The records a recovery reads and writes: the failed job, its run, the jobs that replace them."""

    client: DynamoDBClient
    table_name: str
    _: KW_ONLY
    retention: timedelta = RETENTION
    sleep: Callable[[float], None] = time.sleep

    def get_run(self, run_id: str) -> RunRecord | None:
        return read_run(self.client, self.table_name, run_id)

    def get_job(self, job_id: str) -> JobRecord | None:
        return read_job(self.client, self.table_name, job_id)

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        return read_jobs(self.client, self.table_name, job_ids, self.sleep)

    def write_recovered(self, jobs: Iterable[JobRecord]) -> None:
        """The new jobs' records, each only where none is yet: a redelivery never puts a job that tracking
        has moved on back to SUBMITTED; then their history and a sweep's axes and values (the same items
        again on a redelivery), which a crash before them leaves to the redelivery to write."""
        jobs = list(jobs)
        for job in jobs:
            conditionally(
                self.client.put_item,
                TableName=self.table_name,
                Item=job_item(job),
                ConditionExpression="attribute_not_exists(PK)",
            )
        requests = [
            {"PutRequest": {"Item": history_item(job.job_id, transition, expiry(transition.at, self.retention))}}
            for job in jobs
            for transition in job.history.values()
        ]
        requests += [{"PutRequest": {"Item": item}} for item in sweep_items(jobs, self.retention)]
        batch_write(self.client, self.table_name, requests, self.sleep)

    def rewire_run(self, run_id: str, moves: Mapping[int, tuple[str, SubmittedJobRef]]) -> bool:
        """Point the run's job references at `moves` (index in `jobs` -> (the job it names now, the new
        reference)), if the run has not ended and each reference names that job or already the new one;
        False if not (nothing is written)."""
        names = {"#status": "status"}
        values: dict[str, Any] = {f":open{index}": status for index, status in enumerate(OPEN_RUN)}
        sets, conditions = [], [f"#status IN ({', '.join(f':open{index}' for index in range(len(OPEN_RUN)))})"]
        conditions.append("attribute_not_exists(cancel_requested_at)")
        for index, (old, ref) in moves.items():
            sets.append(f"jobs[{index}] = :ref{index}")
            values[f":ref{index}"] = ref.model_dump(mode="json")
            values[f":old{index}"] = old
            values[f":new{index}"] = ref.job_id
            conditions.append(f"jobs[{index}].job_id IN (:old{index}, :new{index})")
        return conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=run_key(run_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def mark_recovered(self, job_id: str, by: str) -> bool:
        """Note on a replaced job the job that replaced it (once; the same again is no change)."""
        return conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(job_id),
            UpdateExpression="SET recovered_by = :by REMOVE GSI1PK, GSI1SK",  # replaced: nothing left to watch
            ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(recovered_by) OR recovered_by = :by)",
            ExpressionAttributeValues=serialize({":by": by}),
        )

    def mark_recovery_final(self, job_id: str, reason: str) -> bool:
        """Note on a failed job why its due recovery could not be made (unless it was made), and that it is
        no longer due: its failure is final, and its run may end."""
        return conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(job_id),
            UpdateExpression="SET recovery_final = :reason REMOVE recovery",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(recovered_by)",
            ExpressionAttributeValues=serialize({":reason": reason}),
        )
