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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from batchdrop.errors import BatchdropError
from batchdrop.events.contract import Usage
from batchdrop.store.records import JobRecord, RunRecord, Transition, timestamp
from batchdrop.track.batch_events import STATUS_RANK

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

ACTIVE_SHARDS = 8
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
BATCH_WRITE_ATTEMPTS = 6
RUN_SK = "RUN"
CHILDREN_SK = "CHILDREN"
JOB_SK = "JOB"
TERMINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED", "LOST"})

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


def _children_key(parent_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"JOB#{parent_id}"}, "SK": {"S": CHILDREN_SK}}


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
    """The stored form of a job; its history is kept in items of its own (`history_item`)."""
    attributes: dict[str, Any] = {
        **job.model_dump(mode="json", exclude_none=True, exclude={"history"}),
        "PK": f"JOB#{job.job_id}",
        "SK": JOB_SK,
        "kind": "job",
    }
    if job.status not in TERMINAL_JOB_STATES:
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


class RecordsTable:
    """Every read and write of the records table. The client is injected (tests, local runs)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention: timedelta = timedelta(days=90),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.retention = retention
        """How long finished records and their history are kept before DynamoDB's TTL removes them."""
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
        jobs = list(jobs)
        requests = [{"PutRequest": {"Item": run_item(run)}} for run in runs]
        requests += [{"PutRequest": {"Item": job_item(job)}} for job in jobs]
        requests += [
            {"PutRequest": {"Item": history_item(job.job_id, transition, self.history_expiry(transition.at))}}
            for job in jobs
            for transition in job.history.values()
        ]
        self._batch_write(requests)

    def add_transitions(self, transitions: Iterable[tuple[str, Transition]]) -> None:
        """Add transitions to jobs' histories, 25 to a call (each is kept once, however often written)."""
        unique = {
            (job_id, transition.key): {
                "PutRequest": {"Item": history_item(job_id, transition, self.history_expiry(transition.at))}
            }
            for job_id, transition in transitions
        }
        self._batch_write(list(unique.values()))

    def history_expiry(self, at: datetime) -> int:
        return int((at + self.retention).timestamp())

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
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

    # ------------------------------------------------------------------ tracking

    def apply_job_state(self, change: JobChange) -> Applied:
        """Move a job to a newer state, if it is newer than the stored one and the job is not finished.

        One conditional UpdateItem, whatever Lambda instance runs it: a stale or duplicate event
        changes nothing (its transition still joins the history: `add_transitions`).
        """
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": change.status,
            ":order": change.order,
            ":since": change.at,
            ":seen": change.seen_at,
            ":attempts": change.attempts,
            ":succeeded": "SUCCEEDED",
            ":failed": "FAILED",
            ":lost": "LOST",
        }
        sets = [
            "#status = :status",
            "status_order = :order",
            "status_since = :since",
            "last_event_at = :seen",
            "attempts = :attempts",
        ]
        removes: list[str] = []
        for index, (name, value) in enumerate(change.fields.items()):
            names[f"#f{index}"] = name  # aliased: many plain words (usage, reason) are reserved in DynamoDB
            if value is None:
                removes.append(f"#f{index}")
            else:
                sets.append(f"#f{index} = :f{index}")
                values[f":f{index}"] = value
        if change.status in TERMINAL_JOB_STATES:
            removes += ["GSI1PK", "GSI1SK"]  # leaves the watchdog's index
        else:
            sets.append("GSI1SK = :active")
            values[":active"] = f"{change.seen_at}#{change.job_id}"
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=job_key(change.job_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(status_order) OR "
                "status_order < :order) AND NOT (#status IN (:succeeded, :failed, :lost))",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            stored: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            current = JobRecord.model_validate(deserialize(stored)) if stored else None
            return Applied(before=current, changed=False)
        return Applied(before=JobRecord.model_validate(deserialize(response["Attributes"])), changed=True)

    def mark_stuck_reported(self, job_id: str, reason: str, *, advice: str, runnable_seconds: float) -> bool:
        """Record that the job is stuck for this reason, with the advice the `job.stuck` event carries
        (told from the stream); False if this reason was already reported."""
        return _conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(job_id),
            UpdateExpression="SET stuck_reported = :reason, stuck_advice = :advice, stuck_seconds = :seconds",
            ConditionExpression="attribute_exists(PK) AND "
            "(attribute_not_exists(stuck_reported) OR stuck_reported <> :reason)",
            ExpressionAttributeValues=serialize({":reason": reason, ":advice": advice, ":seconds": runnable_seconds}),
        )

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """Job records by id (strongly consistent), 100 to a call."""
        items = self._batch_get([job_key(job_id) for job_id in dict.fromkeys(job_ids)])
        records = (JobRecord.model_validate(deserialize(item)) for item in items)
        return {record.job_id: record for record in records}

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        """Run records by id (strongly consistent), 100 to a call."""
        items = self._batch_get([run_key(run_id) for run_id in dict.fromkeys(run_ids)])
        records = (RunRecord.model_validate(deserialize(item)) for item in items)
        return {record.run_id: record for record in records}

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                self.table_name: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}
            }
            while pending:
                response = self.client.batch_get_item(RequestItems=pending)
                found += response.get("Responses", {}).get(self.table_name, [])
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    self.sleep(0.05)
        return found

    def get_children(self, parent_id: str) -> Children:
        """An array job's children as last merged: their states (see tracking.CHILD_CODES), counts by
        status, usage, and the item's version."""
        found = self.client.get_item(TableName=self.table_name, Key=_children_key(parent_id), ConsistentRead=True).get(
            "Item"
        )
        if not found:
            return Children()
        plain = deserialize(found)
        return Children(
            states=str(plain.get("states", "")),
            version=int(plain.get("version", 0)),
            counts={str(status): int(count) for status, count in plain.get("counts", {}).items()},
            usage=Usage.model_validate(plain.get("usage", {})),
        )

    def put_children(self, parent_id: str, children: Children, *, read_version: int) -> bool:
        """Store the children (states with the counts and usage they imply, one item, so one write keeps
        them together) if no one changed them since `read_version`; False if someone did."""
        item = {
            "PK": f"JOB#{parent_id}",
            "SK": CHILDREN_SK,
            "kind": "children",
            "states": children.states,
            "version": children.version,
            "counts": children.counts,
            "usage": children.usage.model_dump(mode="json"),
        }
        return _conditionally(
            self.client.put_item,
            TableName=self.table_name,
            Item=serialize(item),
            ConditionExpression="attribute_not_exists(PK) OR version = :version",
            ExpressionAttributeValues=serialize({":version": read_version}),
        )

    def children_version_on_parent(self, parent_id: str) -> int:
        """Which version of its children the array job's own record shows (0: none yet)."""
        found = self.client.get_item(
            TableName=self.table_name,
            Key=job_key(parent_id),
            ConsistentRead=True,
            ProjectionExpression="children_version",
        ).get("Item")
        return int(deserialize(found).get("children_version", 0)) if found else 0

    def show_children_on_parent(self, parent_id: str, children: Children, seen_at: str) -> None:
        """Copy the children's counts and usage onto the array job's record, unless it shows a newer
        version already. Absolute values, not increments: a copy re-sent by botocore, or two instances'
        copies landing in either order, leave the newest."""
        _conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(parent_id),
            UpdateExpression="SET children = :counts, children_version = :version, last_event_at = :seen, "
            "child_vcpu_hours = :vcpu, child_gpu_hours = :gpu, child_memory_gib_hours = :memory",
            ConditionExpression="attribute_exists(PK) AND "
            "(attribute_not_exists(children_version) OR children_version < :version)",
            ExpressionAttributeValues=serialize(
                {
                    ":counts": children.counts,
                    ":version": children.version,
                    ":seen": seen_at,
                    ":vcpu": children.usage.vcpu_hours,
                    ":gpu": children.usage.gpu_hours,
                    ":memory": children.usage.memory_gib_hours,
                }
            ),
        )

    def set_run_status(self, run_id: str, team: str, status: str, *, expected: Iterable[str], **fields: Any) -> bool:
        """Move a run to `status` if it is in one of the `expected` states; False if it was not."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": status, ":bystatus": f"TEAM#{team}#{status}"}
        sets = ["#status = :status", "GSI2PK = :bystatus"]
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name  # aliased: many plain words are reserved in DynamoDB
            sets.append(f"#f{index} = :f{index}")
            values[f":f{index}"] = value
        allowed = list(expected)
        for index, state in enumerate(allowed):
            values[f":e{index}"] = state
        return _conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=run_key(run_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#status IN (" + ", ".join(f":e{index}" for index in range(len(allowed))) + ")",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

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

    def quiet_jobs(self, before: str, limit: int = 1000) -> list[JobRecord]:
        """Jobs not finished and not heard of since `before` (ISO time), across the watchdog's shards."""
        found: list[JobRecord] = []
        for shard in range(ACTIVE_SHARDS):
            arguments: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :shard AND GSI1SK < :before",
                "ExpressionAttributeValues": serialize({":shard": f"ACTIVE#{shard}", ":before": before}),
            }
            while len(found) < limit:
                page = self.client.query(**arguments)
                found += [JobRecord.model_validate(deserialize(item)) for item in page.get("Items", [])]
                if "LastEvaluatedKey" not in page:
                    break
                arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

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

    def get_run(self, run_id: str) -> RunRecord | None:
        found = self.client.get_item(TableName=self.table_name, Key=run_key(run_id), ConsistentRead=True)
        item = found.get("Item")
        return RunRecord.model_validate(deserialize(item)) if item else None

    def get_job(self, job_id: str, *, with_history: bool = False) -> JobRecord | None:
        found = self.client.get_item(TableName=self.table_name, Key=job_key(job_id), ConsistentRead=True)
        item = found.get("Item")
        if not item:
            return None
        record = JobRecord.model_validate(deserialize(item))
        return self.with_history(record) if with_history else record

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


def _conditionally(write: Callable[..., object], **arguments: Any) -> bool:
    """Make a conditional write; False if its condition did not hold (nothing was written)."""
    try:
        write(**arguments)
    except ClientError as exc:
        if _code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
