"""The records table: one DynamoDB table, its keys and indexes, and the mechanics its stores share.

Layout (single-table; `template.yaml` declares the same keys and indexes):

- run: PK `RUN#<run id>`, SK `RUN`;
  GSI1 `TEAM#<team>` / `<received at>#<run id>`;
  GSI2 `TEAM#<team>#<status>` / `<received at>#<run id>`;
  GSI3 `SRC#<bucket>/<key>` / `<received at>#<run id>`.
- job: PK `JOB#<Batch job id>`, SK `JOB`;
  GSI1 `ACTIVE#<shard>` / `<last event at>#<job id>`, only while the job is not terminal.
  Beside it, under the same PK: its history (`H#…`), an array's children (`CHILDREN`), and, written once
  with the record, an array's children's hashes (`CHILD_HASHES`) and a sweep's axes and values (`SWEEP`).

It serves docs/architecture.md without a scan: a run by id (GetItem), a job by Batch
job id (GetItem: the tracker's hot path is strongly consistent), a team's
runs newest first (GSI1, descending), optionally by status (GSI2), the runs
made from an S3 key (GSI3), and non-terminal jobs quiet since a given time
(GSI1 over a few shards, so the watchdog's partition never runs hot).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from batchdrop.errors import BatchdropError
from batchdrop.events.contract import Usage
from batchdrop.store.records import STATUS_RANK, TERMINAL, JobRecord, RunRecord, Transition, timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACTIVE_SHARDS = 8
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
BATCH_WRITE_ATTEMPTS = 6
RETENTION = timedelta(days=90)
"""How long finished records and their history are kept, by default, before DynamoDB's TTL removes them."""
RUN_SK = "RUN"
CHILDREN_SK = "CHILDREN"
CHILD_HASHES_SK = "CHILD_HASHES"
"""Beside an array job submitted from a plan: its children's content hashes (docs/resume.md), written once,
apart from the job's record so that the record's many updates do not carry 16 bytes a child."""
SWEEP_SK = "SWEEP"
"""Beside a sweep's job (its first, a recovery's or a resumed run's): its axes and values (`JobRecord.sweep`),
written once with the job's record, apart from it so that the record's many updates (each billed by the whole
item) do not carry up to `limits.SWEEP_RECORD_BYTES`. The records stream filters it out (its `kind`)."""
JOB_SK = "JOB"

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


def children_key(parent_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"JOB#{parent_id}"}, "SK": {"S": CHILDREN_SK}}


def child_hashes_key(job_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": CHILD_HASHES_SK}}


def child_hashes_item(job_id: str, hashes: Sequence[str], expires_at: int) -> dict[str, Any]:
    """An array job's children's hashes, by the index in the plan, as one string (they are all one width),
    expiring with the job's first transition (`history_item`), as its sweep does."""
    return serialize(
        {
            "PK": f"JOB#{job_id}",
            "SK": CHILD_HASHES_SK,
            "kind": "child_hashes",
            "hashes": "".join(hashes),
            "expires_at": expires_at,
        }
    )


def sweep_key(job_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": SWEEP_SK}}


def sweep_items(jobs: Iterable[JobRecord], retention: timedelta = RETENTION) -> list[dict[str, Any]]:
    """The sweep item of each of `jobs` that keeps one: its axes and values as JSON text (a DynamoDB map
    keeps no order, and a child's values depend on the axes' order), expiring with the job's first
    transition (`history_item`)."""
    return [
        serialize(
            {
                "PK": f"JOB#{job.job_id}",
                "SK": SWEEP_SK,
                "kind": "sweep",
                "sweep": json.dumps(job.sweep),
                "expires_at": expiry(job.submitted_at, retention),
            }
        )
        for job in jobs
        if job.sweep
    ]


def sweep_of(item: dict[str, Any]) -> dict[str, list[str]]:
    """A sweep item's axes and values, in the spec's order."""
    sweep: dict[str, list[str]] = json.loads(str(deserialize(item)["sweep"]))
    return sweep


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
    """The stored form of a job; its history and its sweep are kept in items of their own (`history_item`,
    `sweep_items`)."""
    attributes: dict[str, Any] = {
        **job.model_dump(mode="json", exclude_none=True, exclude={"history", "sweep"}),
        "PK": f"JOB#{job.job_id}",
        "SK": JOB_SK,
        "kind": "job",
    }
    if job.status not in TERMINAL:
        attributes["GSI1PK"] = active_shard(job.job_id)
        attributes["GSI1SK"] = f"{timestamp(job.last_event_at)}#{job.job_id}"
    return serialize(attributes)


def history_item(job_id: str, transition: Transition, expires_at: int) -> dict[str, Any]:
    """One transition of a job, under the job's key: `H#<attempt>#<rank>#<status>` sorts as it happened.
    Written with BatchWriteItem: the same transition twice is the same item, so duplicates cost nothing.
    """
    rank = STATUS_RANK.get(transition.status, 6)
    return serialize(
        {
            "PK": f"JOB#{job_id}",
            "SK": f"H#{transition.attempt:03d}#{rank}#{transition.status}",
            "kind": "history",
            **transition.model_dump(mode="json", exclude_none=True),
            "expires_at": expires_at,
        }
    )


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
class JobChange:
    """A job's newer state, as the tracker computed it from Batch's word."""

    job_id: str
    status: str
    order: str
    at: str
    """When the job entered `status` (ISO time)."""
    seen_at: str
    """When batchdrop learned it (ISO time)."""
    attempts: int
    fields: dict[str, Any]
    """Other attributes to set (None removes one)."""


@dataclass(frozen=True)
class Children:
    """An array job's children, kept in one item beside the job: states, and what they add up to."""

    states: str = ""
    version: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    run_times: dict[int, int] = field(default_factory=dict)
    """Ended children by their last attempt's run time: bucket (`child_states.run_time_bucket`) → count,
    each child counted once, when the merge first shows it ended; children that never ran are not in it.
    Empty in items written before run times were kept."""
    failed_logs: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Failed children's log streams, index → (log group, stream) of the attempt that ended them: only the
    lowest `limits.FAILED_CHILD_LOGS` indices, each added when the merge first shows the child FAILED; a
    child that failed before it started has none. Empty in items written before they were kept."""


@dataclass(frozen=True)
class Applied:
    before: JobRecord | None
    """The record before the change (or as it is, when the change was stale); None: no such job."""
    changed: bool


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a run: ours now, or someone's already."""

    run: RunRecord
    fresh: bool
    """True when this call created the claim; False when the run existed (returned as stored)."""


def batch_write(
    client: DynamoDBClient, table_name: str, requests: list[dict[str, Any]], sleep: Callable[[float], None]
) -> None:
    """Write items 25 to a call, retrying what DynamoDB leaves unprocessed; `RecordsUnavailable` if it keeps
    leaving some."""
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: dict[str, Any] = {table_name: requests[start : start + BATCH_WRITE_LIMIT]}
        for attempt in range(BATCH_WRITE_ATTEMPTS):
            left = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not left:
                break
            pending = left
            sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise RecordsUnavailable(f"DynamoDB left {len(pending[table_name])} records unwritten")


def batch_get(
    client: DynamoDBClient, table_name: str, keys: list[dict[str, Any]], sleep: Callable[[float], None]
) -> list[dict[str, Any]]:
    """Items by key (strongly consistent), 100 to a call, asking again for what DynamoDB left."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        pending: dict[str, Any] = {table_name: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}}
        while pending:
            response = client.batch_get_item(RequestItems=pending)
            found += response.get("Responses", {}).get(table_name, [])
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                sleep(0.05)
    return found


def read_jobs(
    client: DynamoDBClient, table_name: str, job_ids: Iterable[str], sleep: Callable[[float], None]
) -> dict[str, JobRecord]:
    items = batch_get(client, table_name, [job_key(job_id) for job_id in dict.fromkeys(job_ids)], sleep)
    records = (JobRecord.model_validate(deserialize(item)) for item in items)
    return {record.job_id: record for record in records}


def read_jobs_with_sweeps(
    client: DynamoDBClient,
    table_name: str,
    job_ids: Iterable[str],
    sweeps_of: Iterable[str],
    sleep: Callable[[float], None],
) -> dict[str, JobRecord]:
    """Job records by id, those of `sweeps_of` with their sweep (where they keep one) filled in: one batch
    read of both."""
    keys = [job_key(job_id) for job_id in dict.fromkeys(job_ids)]
    keys += [sweep_key(job_id) for job_id in dict.fromkeys(sweeps_of)]
    items = batch_get(client, table_name, keys, sleep)
    sweeps = {item["PK"]["S"].removeprefix("JOB#"): sweep_of(item) for item in items if item["SK"]["S"] == SWEEP_SK}
    records = (JobRecord.model_validate(deserialize(item)) for item in items if item["SK"]["S"] == JOB_SK)
    return {
        record.job_id: record.model_copy(update={"sweep": sweeps[record.job_id]}) if record.job_id in sweeps else record
        for record in records
    }


def read_runs(
    client: DynamoDBClient, table_name: str, run_ids: Iterable[str], sleep: Callable[[float], None]
) -> dict[str, RunRecord]:
    items = batch_get(client, table_name, [run_key(run_id) for run_id in dict.fromkeys(run_ids)], sleep)
    records = (RunRecord.model_validate(deserialize(item)) for item in items)
    return {record.run_id: record for record in records}


def read_runs_of_source(
    client: DynamoDBClient, table_name: str, source: tuple[str, str], *, limit: int, sleep: Callable[[float], None]
) -> list[RunRecord]:
    """The newest runs made from one S3 object (`source`: its bucket and key), newest first: one query of
    GSI3 (which keeps keys only: the run ids), then the runs by id."""
    bucket, key = source
    page = client.query(
        TableName=table_name,
        IndexName="GSI3",
        KeyConditionExpression="GSI3PK = :source",
        ExpressionAttributeValues=serialize({":source": f"SRC#{bucket}/{key}"}),
        ScanIndexForward=False,
        Limit=limit,
    )
    run_ids = [str(deserialize(item)["GSI3SK"]).rsplit("#", 1)[-1] for item in page.get("Items", [])]
    runs = read_runs(client, table_name, run_ids, sleep)
    return [runs[run_id] for run_id in run_ids if run_id in runs]


def read_run(client: DynamoDBClient, table_name: str, run_id: str) -> RunRecord | None:
    item = client.get_item(TableName=table_name, Key=run_key(run_id), ConsistentRead=True).get("Item")
    return RunRecord.model_validate(deserialize(item)) if item else None


def read_job(client: DynamoDBClient, table_name: str, job_id: str) -> JobRecord | None:
    item = client.get_item(TableName=table_name, Key=job_key(job_id), ConsistentRead=True).get("Item")
    return JobRecord.model_validate(deserialize(item)) if item else None


def conditionally(write: Callable[..., object], **arguments: Any) -> bool:
    """Make a conditional write; False if its condition did not hold (nothing was written)."""
    try:
        write(**arguments)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def expiry(at: datetime, retention: timedelta) -> int:
    """When DynamoDB's TTL may remove a record finished (or a transition made) at `at`: epoch seconds."""
    return int((at + retention).timestamp())
