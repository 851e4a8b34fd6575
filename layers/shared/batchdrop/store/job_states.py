"""JobStates: Jobs as tracking moves them: conditional state changes that never go backwards, histories,
array children kept in one item beside their parent, stuck reports, and the runs they settle;
with the reads tracking needs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.events.contract import Usage
from batchdrop.store.items import (
    ACTIVE_SHARDS,
    CHILDREN_SK,
    RETENTION,
    Applied,
    Children,
    JobChange,
    batch_write,
    children_key,
    conditionally,
    deserialize,
    error_code,
    expiry,
    history_item,
    job_key,
    read_job,
    read_jobs,
    read_runs,
    run_key,
    serialize,
)
from batchdrop.store.node_ends import NODE_ENDS_PER_WRITE, node_ends_update
from batchdrop.store.records import TERMINAL, JobRecord, NodeEnd, RunRecord, Transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class JobStates:
    """Jobs as tracking moves them: conditional state changes that never go backwards, histories,
    array children kept in one item beside their parent, stuck reports, and the runs they settle;
    with the reads tracking needs."""

    client: DynamoDBClient
    table_name: str
    _: KW_ONLY
    retention: timedelta = RETENTION
    sleep: Callable[[float], None] = time.sleep

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
        # A failed job waiting for its recovery stays watched: should the recovery prove impossible, the
        # watchdog (track.reconcile) settles its run, for no Batch event will come to do it.
        if change.status in TERMINAL and change.fields.get("recovery") is None:
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
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            stored: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            current = JobRecord.model_validate(deserialize(stored)) if stored else None
            return Applied(before=current, changed=False)
        return Applied(before=JobRecord.model_validate(deserialize(response["Attributes"])), changed=True)

    def add_transitions(self, transitions: Iterable[tuple[str, Transition]]) -> None:
        """Add transitions to jobs' histories, 25 to a call (each is kept once, however often written)."""
        unique = {
            (job_id, transition.key): {
                "PutRequest": {"Item": history_item(job_id, transition, expiry(transition.at, self.retention))}
            }
            for job_id, transition in transitions
        }
        batch_write(self.client, self.table_name, list(unique.values()), self.sleep)

    def history_expiry(self, at: datetime) -> int:
        return expiry(at, self.retention)

    def mark_stuck_reported(self, job_id: str, reason: str, *, advice: str, runnable_seconds: float) -> bool:
        """Record that the job is stuck for this reason, with the advice the `job.stuck` event carries
        (told from the stream); False if this reason was already reported."""
        return conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(job_id),
            UpdateExpression="SET stuck_reported = :reason, stuck_advice = :advice, stuck_seconds = :seconds",
            ConditionExpression="attribute_exists(PK) AND "
            "(attribute_not_exists(stuck_reported) OR stuck_reported <> :reason)",
            ExpressionAttributeValues=serialize({":reason": reason, ":advice": advice, ":seconds": runnable_seconds}),
        )

    def get_children(self, parent_id: str) -> Children:
        """An array job's children as last merged: their states (see `batchdrop.track.arrays.CHILD_CODES`), counts by
        status, usage, run times (a histogram), and the item's version."""
        found = self.client.get_item(TableName=self.table_name, Key=children_key(parent_id), ConsistentRead=True).get(
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
            run_times={int(bucket): int(count) for bucket, count in plain.get("run_times", {}).items()},
            failed_logs={int(index): (str(log[0]), str(log[1])) for index, log in plain.get("failed_logs", {}).items()},
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
            "run_times": {str(bucket): count for bucket, count in children.run_times.items()},
            "failed_logs": {str(index): list(log) for index, log in children.failed_logs.items()},
        }
        return conditionally(
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
        conditionally(
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

    def keep_node_ends(self, job_id: str, ends: Mapping[int, NodeEnd]) -> int:
        """Keep a multi-node job's nodes' ends on its record (`JobRecord.node_ends`), each unless the record
        keeps that node's end of the same attempt or a later one (`NodeEnd.replaces`): one conditional write
        for a tracking batch's ends (`NODE_ENDS_PER_WRITE` at most), in any order, redelivered or not. If
        another writer kept some of them first, the write fails whole and returns the record, and the rest are
        written again. How many it kept (0 for no such job)."""
        nodes = sorted(ends)
        return sum(
            self._keep_node_ends(job_id, {node: ends[node] for node in nodes[start : start + NODE_ENDS_PER_WRITE]})
            for start in range(0, len(nodes), NODE_ENDS_PER_WRITE)
        )

    def _keep_node_ends(self, job_id: str, pending: dict[int, NodeEnd]) -> int:
        made_map = False
        while pending:
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=job_key(job_id),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **node_ends_update(pending),
                )
            except ClientError as exc:
                code = error_code(exc)
                if code == "ValidationException" and not made_map:
                    # a record written before node ends were kept has no map to set a node in: made once
                    self._make_node_ends_map(job_id)
                    made_map = True
                    continue
                if code != "ConditionalCheckFailedException":
                    raise
                stored: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
                if not stored:
                    return 0  # no such job
                kept = {
                    str(node): NodeEnd.model_validate(end)
                    for node, end in deserialize(stored).get("node_ends", {}).items()
                }
                left = {node: end for node, end in pending.items() if end.replaces(kept.get(str(node)))}
                if len(left) == len(pending):  # the condition failed for none of them: nothing more to learn
                    raise
                pending = left
                continue
            return len(pending)
        return 0

    def _make_node_ends_map(self, job_id: str) -> None:
        conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(job_id),
            UpdateExpression="SET node_ends = if_not_exists(node_ends, :none)",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=serialize({":none": {}}),
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
        return conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=run_key(run_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#status IN (" + ", ".join(f":e{index}" for index in range(len(allowed))) + ")",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def unwatch(self, job_id: str) -> bool:
        """Take a failed job whose recovery was settled (made, or found impossible) off the watchdog's index."""
        return conditionally(
            self.client.update_item,
            TableName=self.table_name,
            Key=job_key(job_id),
            UpdateExpression="REMOVE GSI1PK, GSI1SK",
            ConditionExpression="attribute_exists(recovery_final) OR attribute_exists(recovered_by)",
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

    def get_job(self, job_id: str) -> JobRecord | None:
        return read_job(self.client, self.table_name, job_id)

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """Job records by id (strongly consistent), 100 to a call."""
        return read_jobs(self.client, self.table_name, job_ids, self.sleep)

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        """Run records by id (strongly consistent), 100 to a call."""
        return read_runs(self.client, self.table_name, run_ids, self.sleep)
