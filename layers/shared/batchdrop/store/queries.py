"""RecordQueries: Runs and jobs as operators ask for them (the command line, tests): by id, a team's newest
first, with their histories; a spec's earlier runs and its steps' run times (`batchdrop plan --expected`);
and who asked to cancel a run."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from batchdrop.store.items import (
    RETENTION,
    deserialize,
    job_key,
    read_job,
    read_jobs,
    read_jobs_with_sweeps,
    read_run,
    read_runs,
    read_runs_of_source,
    run_key,
    serialize,
)
from batchdrop.store.records import STATUS_RANK, JobRecord, RunRecord, Transition, timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


NAMED_AMONG = 5
"""A spec with no runs from its key is looked for by name among this many times as many of its team's runs."""


@dataclass(frozen=True)
class EarlierRuns:
    """A spec's earlier runs, as its expected case reads them (`platform.budgets.expected_case`)."""

    read: str
    """Where they were looked for, in words."""
    runs: list[RunRecord]
    run_minutes: dict[str, list[float]]
    """Each step's run times, per job or child, in minutes (`step_run_minutes`)."""


def step_run_minutes(runs: Iterable[RunRecord], jobs: Mapping[str, JobRecord]) -> dict[str, list[float]]:
    """Each step's run times in these runs: of every job a run ran itself (not a step it reused) and that
    succeeded, its run time per job, per array child or per node, every attempt's (what was paid for)."""
    found: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for ref in run.jobs:
            job = jobs.get(ref.job_id)
            if job is None or job.run_id != run.run_id or job.status != "SUCCEEDED":
                continue
            minutes = run_minutes(job)
            if minutes is not None:
                found[job.step].append(minutes)
    return dict(found)


def run_minutes(job: JobRecord) -> float | None:
    """A job's run time in minutes, per child or node: its usage (requested resources × run time, summed
    over attempts and children) over its memory; None when batchdrop knows no usage of it."""
    usage = job.told_usage
    if usage is None or usage.memory_gib_hours <= 0 or job.resources.memory_mib <= 0:
        return None
    count = job.array_size or job.nodes or 1
    return usage.memory_gib_hours / (job.resources.memory_mib / 1024) / count * 60


@dataclass
class RecordQueries:
    """Runs and jobs as operators ask for them (the command line, tests): by id, a team's newest
    first, with their histories; and who asked to cancel a run."""

    client: DynamoDBClient
    table_name: str
    _: KW_ONLY
    retention: timedelta = RETENTION
    sleep: Callable[[float], None] = time.sleep

    def get_run(self, run_id: str) -> RunRecord | None:
        return read_run(self.client, self.table_name, run_id)

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        """Run records by id (strongly consistent), 100 to a call."""
        return read_runs(self.client, self.table_name, run_ids, self.sleep)

    def get_job(self, job_id: str, *, with_history: bool = False) -> JobRecord | None:
        record = read_job(self.client, self.table_name, job_id)
        if record is None:
            return None
        return self.with_history(record) if with_history else record

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """Job records by id (strongly consistent), 100 to a call."""
        return read_jobs(self.client, self.table_name, job_ids, self.sleep)

    def get_jobs_with_sweeps(self, job_ids: Iterable[str], sweeps_of: Iterable[str]) -> dict[str, JobRecord]:
        """Job records by id, those of `sweeps_of` with their sweep's axes and values (kept beside the job),
        in one batch read (the report's)."""
        return read_jobs_with_sweeps(self.client, self.table_name, job_ids, sweeps_of, self.sleep)

    def with_history(self, job: JobRecord) -> JobRecord:
        """The job with its history (kept in items of their own) filled in."""
        return job.model_copy(update={"history": {t.key: t for t in self.get_history(job.job_id)}})

    def get_history(self, job_id: str) -> list[Transition]:
        """Every transition of a job, in the order it happened."""
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :job AND begins_with(SK, :history)",
            "ExpressionAttributeValues": serialize({":job": f"JOB#{job_id}", ":history": "H#"}),
            "ConsistentRead": True,
        }
        found: list[Transition] = []
        while True:
            page = self.client.query(**arguments)
            found += [Transition.model_validate(deserialize(item)) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda item: (item.attempt, STATUS_RANK.get(item.status, 6), item.at))
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list_runs(
        self,
        team: str,
        *,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[RunRecord], dict[str, Any] | None]:
        """A team's runs, newest first (GSI1), or only those in `status` (GSI2); and where to go on."""
        index, partition = ("GSI2", f"TEAM#{team}#{status}") if status else ("GSI1", f"TEAM#{team}")
        condition = f"{index}PK = :team"
        values: dict[str, Any] = {":team": partition}
        if since is not None:
            condition += f" AND {index}SK >= :since"
            values[":since"] = timestamp(since)
        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": serialize(values),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            arguments["ExclusiveStartKey"] = start
        page = self.client.query(**arguments)
        runs = [RunRecord.model_validate(deserialize(item)) for item in page.get("Items", [])]
        return runs, page.get("LastEvaluatedKey")

    def runs_of_source(self, bucket: str, key: str, *, limit: int) -> list[RunRecord]:
        """The newest runs made from one S3 key (GSI3: one query of `limit` keys, then the runs by id)."""
        return read_runs_of_source(self.client, self.table_name, (bucket, key), limit=limit, sleep=self.sleep)

    def earlier_runs(self, *, bucket: str, key: str, team: str, spec_name: str, limit: int) -> EarlierRuns:
        """A spec's newest runs, at most `limit`, with their jobs: those made from its S3 key; or, if none of
        them ran a step to success (a new name, another folder, or its last runs all rejected or failed),
        those of the same spec name among its team's newest `NAMED_AMONG` × `limit` runs. Bounded: two
        queries at most, and the jobs of `2 × limit` runs."""
        runs = self.runs_of_source(bucket, key, limit=limit)
        earlier = self._with_run_minutes(f"s3://{bucket}/{key}", runs)
        if earlier.run_minutes:
            return earlier
        newest, _ = self.list_runs(team, limit=limit * NAMED_AMONG)
        named = [run for run in newest if run.spec_name == spec_name][:limit]
        by_name = self._with_run_minutes(
            f"spec `{spec_name}` among team {team}'s newest {limit * NAMED_AMONG} runs", named
        )
        return by_name if by_name.run_minutes or not runs else earlier

    def _with_run_minutes(self, read: str, runs: list[RunRecord]) -> EarlierRuns:
        jobs = self.get_jobs(ref.job_id for run in runs for ref in run.jobs if not ref.reused_from)
        return EarlierRuns(read=read, runs=runs, run_minutes=step_run_minutes(runs, jobs))

    def record_cancel_request(
        self, run_id: str, job_ids: Iterable[str], *, who: str, reason: str | None, at: datetime
    ) -> None:
        """Note on the run and its unfinished jobs who asked to cancel them, when and why."""
        fields: dict[str, Any] = {"cancelled_by": who, "cancel_requested_at": timestamp(at)}
        if reason:
            fields["cancel_reason"] = reason
        self._set_fields(run_key(run_id), fields)
        for job_id in job_ids:
            self._set_fields(job_key(job_id), {"cancelled_by": who})

    def _set_fields(self, key: dict[str, Any], fields: dict[str, Any]) -> None:
        names = {f"#f{index}": name for index, name in enumerate(fields)}
        values = {f":f{index}": value for index, value in enumerate(fields.values())}
        self.client.update_item(
            TableName=self.table_name,
            Key=key,
            UpdateExpression="SET " + ", ".join(f"#f{index} = :f{index}" for index in range(len(fields))),
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )
