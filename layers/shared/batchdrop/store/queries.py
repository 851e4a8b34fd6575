"""RecordQueries: Runs and jobs as operators ask for them (the command line, tests): by id, a team's newest
first, with their histories; and who asked to cancel a run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from batchdrop.store.items import (
    RETENTION,
    deserialize,
    job_key,
    read_job,
    read_jobs,
    read_run,
    read_runs,
    run_key,
    serialize,
)
from batchdrop.store.records import STATUS_RANK, JobRecord, RunRecord, Transition, timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
