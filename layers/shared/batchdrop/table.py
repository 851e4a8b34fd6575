"""The records table: one DynamoDB table, its keys and indexes, and the writes batchdrop makes.

Layout (single-table; `template.yaml` declares the same keys and indexes):

- run: PK `RUN#<run id>`, SK `RUN`;
  GSI1 `TEAM#<team>` / `<received at>#<run id>`;
  GSI2 `TEAM#<team>#<status>` / `<received at>#<run id>`;
  GSI3 `SRC#<bucket>/<key>` / `<received at>#<run id>`.
- job: PK `JOB#<Batch job id>`, SK `JOB`;
  GSI1 `ACTIVE#<shard>` / `<last event at>#<job id>`, only while the job is not terminal.

It serves DESIGN.md §7 without a scan: a run by id (GetItem), a job by Batch
job id (GetItem: the tracker's hot path is strongly consistent), a team's
runs newest first (GSI1, descending), optionally by status (GSI2), the runs
made from an S3 key (GSI3), and non-terminal jobs quiet since a given time
(GSI1 over a few shards, so the watchdog's partition never runs hot).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from batchdrop.errors import BatchdropError
from batchdrop.records import JobRecord, RunRecord, timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

ACTIVE_SHARDS = 8
BATCH_WRITE_LIMIT = 25
BATCH_WRITE_ATTEMPTS = 6
RUN_SK = "RUN"
JOB_SK = "JOB"
TERMINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class RecordConflict(BatchdropError):
    """A conditional write found the record in another state than expected."""


class RecordsUnavailable(BatchdropError):
    """DynamoDB did not take the writes, even after retries."""


def run_key(run_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"RUN#{run_id}"}, "SK": {"S": RUN_SK}}


def job_key(job_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": JOB_SK}}


def active_shard(job_id: str) -> str:
    return f"ACTIVE#{int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % ACTIVE_SHARDS}"


def run_item(run: RunRecord) -> dict[str, Any]:
    """The stored form of a run, with the index keys its status and source imply."""
    order = f"{timestamp(run.received_at)}#{run.run_id}"
    attributes = {
        **run.model_dump(mode="json", exclude_none=True),
        "PK": f"RUN#{run.run_id}",
        "SK": RUN_SK,
        "kind": "run",
        "GSI1PK": f"TEAM#{run.team}",
        "GSI1SK": order,
        "GSI2PK": f"TEAM#{run.team}#{run.status}",
        "GSI2SK": order,
        "GSI3PK": f"SRC#{run.source.bucket}/{run.source.key}",
        "GSI3SK": order,
    }
    return serialize(attributes)


def job_item(job: JobRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        **job.model_dump(mode="json", exclude_none=True),
        "PK": f"JOB#{job.job_id}",
        "SK": JOB_SK,
        "kind": "job",
    }
    if job.status not in TERMINAL_JOB_STATES:
        attributes["GSI1PK"] = active_shard(job.job_id)
        attributes["GSI1SK"] = f"{timestamp(job.last_event_at)}#{job.job_id}"
    return serialize(attributes)


def serialize(attributes: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(_numbers_as_decimals(value)) for name, value in attributes.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _plain_numbers(_deserializer.deserialize(value)) for name, value in item.items()}


def _numbers_as_decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _numbers_as_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_decimals(item) for item in value]
    return value


def _plain_numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a run: ours now, or someone's already."""

    run: RunRecord
    fresh: bool
    """True when this call created the claim; False when the run existed (returned as stored)."""


class RecordsTable:
    """Every read and write of the records table. The client is injected (tests, local runs)."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table_name = table_name
        self.sleep = sleep

    def claim_run(self, run: RunRecord) -> Claim:
        """Create the run record if there is none; otherwise return the stored one."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=run_item(run),
                ConditionExpression="attribute_not_exists(PK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            stored: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            existing = RunRecord.model_validate(deserialize(stored)) if stored else self.get_run(run.run_id)
            if existing is None:  # deleted between the two calls: claim again
                return self.claim_run(run)
            return Claim(run=existing, fresh=False)
        return Claim(run=run, fresh=True)

    def reclaim_run(self, previous: RunRecord, owner: str, at: datetime) -> RunRecord:
        """Take over a claim (ours redelivered, or a dead one's); `RecordConflict` if it moved meanwhile."""
        claimed = previous.model_copy(update={"claim_owner": owner, "claimed_at": at})
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=run_item(claimed),
                ConditionExpression="claim_owner = :owner AND claimed_at = :at AND #status = :status",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=serialize(
                    {
                        ":owner": previous.claim_owner,
                        ":at": previous.model_dump(mode="json")["claimed_at"],
                        ":status": previous.status,
                    }
                ),
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise RecordConflict(f"run {previous.run_id} was claimed by someone else meanwhile") from exc
            raise
        return claimed

    def finish_run(self, run: RunRecord, jobs: Iterable[JobRecord] = ()) -> None:
        """Write the run's final submission record and its jobs, all or nothing, if we still own it."""
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": job_item(job),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for job in jobs
        ]
        items.append(
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": run_item(run),
                    "ConditionExpression": "claim_owner = :owner AND #status = :submitting",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": serialize({":owner": run.claim_owner, ":submitting": "submitting"}),
                }
            }
        )
        try:
            if len(items) == 1:
                self.client.put_item(**items[0]["Put"])
            else:
                self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
                raise RecordConflict(f"run {run.run_id} is no longer ours to finish: {exc}") from exc
            raise

    def write_new(self, runs: Iterable[RunRecord], jobs: Iterable[JobRecord]) -> None:
        """Write records no one else writes yet (fresh claims), 25 to a call, retrying what is left."""
        requests = [{"PutRequest": {"Item": run_item(run)}} for run in runs]
        requests += [{"PutRequest": {"Item": job_item(job)}} for job in jobs]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {self.table_name: requests[start : start + BATCH_WRITE_LIMIT]}
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                left = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not left:
                    break
                pending = left
                self.sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise RecordsUnavailable(f"DynamoDB left {len(pending[self.table_name])} records unwritten")

    def get_run(self, run_id: str) -> RunRecord | None:
        found = self.client.get_item(TableName=self.table_name, Key=run_key(run_id), ConsistentRead=True)
        item = found.get("Item")
        return RunRecord.model_validate(deserialize(item)) if item else None

    def get_job(self, job_id: str) -> JobRecord | None:
        found = self.client.get_item(TableName=self.table_name, Key=job_key(job_id), ConsistentRead=True)
        item = found.get("Item")
        return JobRecord.model_validate(deserialize(item)) if item else None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
