"""Where the emulator (moto, on plain HTTP, without Docker) is not AWS, and what stands in.

Each bridge is named, says what differs, and is the only place that knows it.
Handler code is never special-cased for local runs: the bridges change what
the emulator does around the functions, never what the functions do.

The bridges, each named where it is implemented:

- TLS-ONLY BUCKET POLICY: the emulator listens on plain HTTP; the SecureTransport deny is left out.
- S3 NOTIFICATIONS: moto's lack versionId, sequencer, userIdentity...; `S3Notifications` sends S3's.
- LAMBDA EXECUTION: moto runs no function without Docker; `runtime.LocalLambda` plays the sources.
- SNS TO LAMBDA: needs moto's Lambda; an SQS queue is subscribed in its place.
- SCHEDULES: an EventBridge rule with a Lambda target needs moto's Lambda; `LocalLambda` keeps time.
- BATCH JOB STATE CHANGES: moto's Batch ends jobs at once, with no events; `batch_lifecycle.LocalBatch`.
- BATCH RESOURCE OVERRIDES: moto shows the job definition's vCPUs and memory, not the request's.
- BATCH RETRY STRATEGY: moto drops the request's retryStrategy and resourceRequirements overrides;
  `batch_fates.keep_submitted_retry_strategies` keeps and shows them, and LocalBatch retries by them.
- BATCH JOB DISCOVERY: moto's ListJobs lists every array child in full; new job ids come from the records.
- ATOMIC CONDITIONAL WRITES: moto checks a write's condition and writes without a lock; they are serialized.
- STACK OUTPUTS: the stack is not made by moto's CloudFormation; a stand-in stack holds the outputs.
- RETRY DELAYS: Lambda redelivers a failed message after minutes; locally after seconds.
- BATCHING WINDOWS: a demo may shorten how long the local runtime waits to fill a batch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batchdrop_local.notifications import StoredObject, s3_notification
from batchdrop_local.stack_model import Stack

logger = logging.getLogger(__name__)


def without_tls_only_statements(policy: dict[str, Any]) -> dict[str, Any]:
    """TLS-ONLY BUCKET POLICY. The template denies every request to the jobs bucket that is not
    over TLS (`aws:SecureTransport: false`). moto enforces bucket policies, and the emulator
    listens on plain HTTP on loopback, so locally that statement would deny everything; it is
    left out of the local bucket policy. Every other statement stays.
    """
    statements = [
        statement
        for statement in policy.get("Statement", [])
        if statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") != "false"
    ]
    return {**policy, "Statement": statements}


@dataclass(frozen=True)
class _QueueNotification:
    bucket: str
    queue_arn: str
    prefix: str
    suffix: str

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


class S3Notifications:
    """S3 NOTIFICATIONS. moto sends bucket notifications, but without the fields S3 sends
    (versionId, sequencer, userIdentity, requestParameters, responseElements), and batchdrop
    needs the version: it is the run's identity. So the local stack takes moto's notifications
    off and applies the template's NotificationConfiguration itself: it watches the buckets'
    object versions and, for each new version whose key matches a rule's prefix and suffix,
    sends S3's notification (the shape of `events/submit/`) to the rule's queue.
    """

    def __init__(self, aws: Any, stack: Stack, *, interval: float = 0.5) -> None:
        self.aws = aws
        self.interval = interval
        self.rules = list(_queue_rules(stack))
        self._seen: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        s3 = aws.client("s3")
        for bucket in {rule.bucket for rule in self.rules}:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
            self._sweep(bucket, send=False)  # what is there already was notified (or never will be)

    def start(self) -> S3Notifications:
        self._thread = threading.Thread(target=self._run, name="s3-notifications", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for bucket in {rule.bucket for rule in self.rules}:
                try:
                    self._sweep(bucket, send=True)
                except Exception:  # the emulator shutting down, say: the next sweep tries again
                    logger.exception("S3 notification sweep failed")

    def _sweep(self, bucket: str, *, send: bool) -> None:
        s3 = self.aws.client("s3")
        sqs = self.aws.client("sqs")
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            for version in sorted(page.get("Versions", []), key=lambda item: item["LastModified"]):
                identity = (bucket, version["Key"], version["VersionId"])
                if identity in self._seen:
                    continue
                self._seen.add(identity)
                if not send:
                    continue
                stored = StoredObject(
                    bucket, version["Key"], version["VersionId"], version["ETag"].strip('"'), int(version["Size"])
                )
                for rule in self.rules:
                    if rule.bucket == bucket and rule.matches(version["Key"]):
                        url = sqs.get_queue_url(QueueName=rule.queue_arn.rsplit(":", 1)[1])["QueueUrl"]
                        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(s3_notification(stored)))


def _queue_rules(stack: Stack) -> Iterable[_QueueNotification]:
    resources = stack.resolver.template["Resources"]
    for logical_id, declaration in resources.items():
        if declaration["Type"] != "AWS::S3::Bucket":
            continue
        configuration = declaration.get("Properties", {}).get("NotificationConfiguration")
        if not configuration:
            continue
        bucket = stack.ref(logical_id)
        for entry in stack.resolver.resolve(configuration).get("QueueConfigurations", []):
            rules = {rule["Name"]: rule["Value"] for rule in entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
            yield _QueueNotification(bucket, entry["Queue"], rules.get("prefix", ""), rules.get("suffix", ""))


def sns_subscription_queue(aws: Any, topic_arn: str, name: str, properties: dict[str, Any] | None = None) -> str:
    """SNS TO LAMBDA. A Lambda subscription to an SNS topic needs moto's Lambda (Docker). Locally an
    SQS queue is subscribed in its place (not raw: the message keeps SNS's envelope), with the event's
    `FilterPolicy` (and its scope), and the local runtime turns each message back into the SNS event
    Lambda would have been given.
    """
    sqs = aws.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes: dict[str, str] = {}
    if properties and "FilterPolicy" in properties:
        attributes["FilterPolicy"] = json.dumps(properties["FilterPolicy"])
        attributes["FilterPolicyScope"] = properties.get("FilterPolicyScope", "MessageAttributes")
    aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def sns_event_from_queue(message: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The event Lambda gets from SNS, from the envelope SNS put in the stand-in queue."""
    envelope = json.loads(message["Body"])
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope["MessageId"],
                    "TopicArn": envelope["TopicArn"],
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope.get("Timestamp", datetime.now(UTC).isoformat()),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", "EXAMPLE"),
                    "SigningCertUrl": envelope.get(
                        "SigningCertURL", "https://sns.us-east-1.amazonaws.com/SimpleNotificationService.pem"
                    ),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", "https://sns.us-east-1.amazonaws.com/"),
                    "MessageAttributes": {
                        name: {"Type": value.get("Type", "String"), "Value": value["Value"]}
                        for name, value in envelope.get("MessageAttributes", {}).items()
                    },
                },
            }
        ]
    }


def requested(aws: Any, table: str, job_id: str) -> tuple[dict[str, Any], int, int | None] | None:
    """BATCH RESOURCE OVERRIDES. moto's DescribeJobs shows the job definition's vCPUs and memory,
    not the resourceRequirements the SubmitJob request overrode, and no retry strategy. Batch would
    show the request's; locally they are read from the job's record, which holds what was asked
    for: the resources, the attempts the retry strategy allows, and a multi-node job's nodes (moto keeps
    its job definition's `numNodes`, not the request's `nodeOverrides`).
    """
    key = {"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": "JOB"}}
    item = aws.client("dynamodb").get_item(TableName=table, Key=key).get("Item")
    if not item:
        return None
    resources = item["resources"]["M"]
    plain = {name: float(value["N"]) if name == "vcpus" else int(value["N"]) for name, value in resources.items()}
    nodes = int(item["nodes"]["N"]) if "nodes" in item else None
    return plain, int(item.get("max_attempts", {}).get("N", 1)), nodes


def stand_in_stack_outputs(aws: Any, stack_name: str, outputs: dict[str, str]) -> None:
    """STACK OUTPUTS. The local stack's resources are made through each service's API (moto's
    CloudFormation cannot apply the SAM template), so `batchdrop --stack NAME` would find no
    stack. A stand-in stack holding only the outputs is registered under the stack's name.
    """
    template = {
        "Resources": {  # a stack must hold a resource: one moto's CloudFormation can make
            "StandIn": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{stack_name}/stand-in", "Type": "String", "Value": "outputs only"},
            }
        },
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    cloudformation = aws.client("cloudformation")
    with contextlib.suppress(Exception):  # there was none
        cloudformation.delete_stack(StackName=stack_name)
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))


def serialize_dynamodb_writes() -> None:
    """ATOMIC CONDITIONAL WRITES. DynamoDB checks a write's condition and makes the write as one
    atomic step per item; batchdrop's claims (two deliveries of one upload submit once) rely on
    it. moto's server answers requests on many threads and checks, then writes, with no lock, so
    two concurrent conditional puts can both succeed. In the emulator's process, its item writes
    are made one at a time. Call before the emulator serves.
    """
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415  # only the emulator's process loads moto

    if getattr(DynamoDBBackend, "_batchdrop_serialized", False):
        return
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def one_at_a_time(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, one_at_a_time)
    DynamoDBBackend._batchdrop_serialized = True  # type: ignore[attr-defined]


def back_up_only_what_a_transaction_writes() -> None:
    """CANCELLED TRANSACTIONS. A TransactWriteItems that is cancelled changes nothing, and its table's
    stream shows nothing of it. moto keeps that promise by deep-copying every table a transaction names
    (every item, and every record its stream ever had) before each transaction, and putting the copy in
    the table's place when it is cancelled: a cost that grows with the table, per transaction. Tracking
    counts each ended job's cost in one, so a benchmark of thousands of jobs copied its table thousands
    of times (the emulator grew past 18 GB), and a cancelled one left the stream's readers holding the
    replaced shard. Here only the items a transaction names are copied, and a cancelled transaction
    puts them back and cuts its records off the (same) stream. Call before the emulator serves, before
    `serialize_dynamodb_writes` (which makes a transaction one step, so nothing reads between).
    """
    from moto.dynamodb import models  # noqa: PLC0415  # only the emulator's process loads moto
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    if getattr(models.DynamoDBBackend, "_batchdrop_item_backups", False):
        return

    class TablesNotCopied:
        """`copy` as moto's DynamoDB backend sees it: a table's "backup" is the table itself."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[Table, Any, Any, Any]] = []
        streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items:
            operation: Any = next(iter(entry.values()), {})
            table = self.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            if table is None:
                continue
            backup = _backed_up(table, operation)
            if backup is not None:
                backups.append((table, *backup))
            if table.stream_shard is not None:
                streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backups):
                _put_back(table, hash_value, range_value, item)
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    models.copy = TablesNotCopied  # type: ignore[assignment,attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    models.DynamoDBBackend._batchdrop_item_backups = True  # type: ignore[attr-defined]


def _backed_up(table: Any, operation: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """The key of the item a transaction's operation names, and a copy of the item (None: there is none)."""
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415  # only the emulator's process loads moto

    key = operation.get("Key") or operation.get("Item") or {}
    try:
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except KeyError:
        return None  # moto refuses it before it writes anything
    return hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    """The item as it was before the transaction (None: it was not there)."""
    holder = table.items[hash_value] if range_value is not None else table.items
    where = range_value if range_value is not None else hash_value
    if item is None:
        holder.pop(where, None)
    else:
        holder[where] = item
    if range_value is not None and not table.items[hash_value]:
        del table.items[hash_value]


def retry_delay_seconds(speed: float) -> int:
    """RETRY DELAYS. A message a Lambda reports failed is delivered again after the queue's
    visibility timeout (6 minutes here). Locally it comes back after a few seconds (scaled by the
    demo's speed), so that retries, and the dead-letter queue after them, are seen in a minute.
    """
    return max(1, round(3 / speed))
