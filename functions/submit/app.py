"""submit: S3 drops, delivered through the intake SQS queue, become AWS Batch jobs; and failed jobs whose
recovery tracking decided, delivered by the records table's stream, are replaced (docs/recovery.md).

Thin on purpose: an SQS batch (intake) or a stream batch (records with
`eventSource` `aws:dynamodb`, filtered by the event source to jobs that
`recovery` was just set on) goes to its domain service. For intake: parse
each SQS record (an S3 notification, or S3's test event), hand every object
created to the domain's `Submitter`, count what happened. Anything else S3 may send (a delete, a delete marker, the test
event, a restore, a tagging change: whatever the bucket's notification
configuration is widened to) is acknowledged and counted
(`IgnoredNotifications` by event name), never made a run.
A record whose work failed is reported back to SQS (partial batch response)
and retried; the Submitter makes the retry safe. For the stream: each
record's new image is the failed job's record, handed to the `Recoverer`;
the first that fails is reported, and the stream hands it (and those after
it) over again; the Recoverer makes that safe. Receipts and events are not
written here: the publish function tells each decided run from the table's
stream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Json, ValidationError

from batchdrop.store.items import deserialize
from batchdrop.store.records import JobRecord, SpecSource
from batchdrop.submit.intake import is_object_creation
from batchdrop.submit.submitter import ClaimHeld, Drop, Outcome, Submitter
from batchdrop.wiring.build import build_recoverer, build_submitter
from batchdrop.wiring.settings import SubmitSettings, load_settings
from batchdrop.wiring.snapstart import register_snapshot_hooks
from batchdrop.wiring.telemetry import dimension_metric

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures

    from batchdrop.submit.recovery import Recovered, Recoverer

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
settings = load_settings(SubmitSettings)
submitter = build_submitter(settings)
register_snapshot_hooks()


TIME_FOR_A_DROP_MS = 30_000
"""A drop is not started with less of the invocation left than this (the function's timeout is 120 s):
Lambda's timeout would stop it mid-way, and with it the batch's records, written at the end. It is
reported failed instead, unhandled, and SQS delivers it again: one receive spent, where a time-out
spends one of every message in the batch."""


@cache
def recoverer() -> Recoverer:
    """Built on the first stream batch (its modules imported then): most instances only read the intake queue."""
    return build_recoverer(submitter, settings)


# The S3 notification as this function reads it: the fields it uses, checked. Powertools' parser models
# (and its BatchProcessor, which imports every event model and data class) cost a cold start ~100 ms.
class S3Object(BaseModel):
    key: str
    size: float | None = None
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class S3Bucket(BaseModel):
    name: str


class S3Entity(BaseModel):
    bucket: S3Bucket
    object: S3Object | None = None


class S3Identity(BaseModel):
    principalId: str


class S3RecordModel(BaseModel):
    eventName: str
    eventTime: datetime
    userIdentity: S3Identity
    s3: S3Entity


class S3Model(BaseModel):
    Records: list[S3RecordModel]


class S3TestEvent(BaseModel):
    """What S3 sends once when a notification is configured."""

    Service: str
    Event: Literal["s3:TestEvent"]
    Bucket: str


class IntakeRecord(BaseModel):
    messageId: str
    body: Json[S3Model | S3TestEvent]


def drop_from(record: S3RecordModel, message_id: str) -> Drop:
    s3_object = record.s3.object
    if s3_object is None:  # ObjectCreated notifications always name their object
        raise ValueError(f"S3 notification {record.eventName} names no object")
    return Drop(
        source=SpecSource(
            bucket=record.s3.bucket.name,
            key=unquote_plus(s3_object.key),  # S3 URL-encodes keys in notifications
            version_id=s3_object.versionId,
            etag=s3_object.eTag,
            sequencer=s3_object.sequencer,
        ),
        message_id=message_id,
        size=int(s3_object.size) if s3_object.size is not None else None,
        event_time=record.eventTime,
        dropped_by=record.userIdentity.principalId,
    )


def handle_record(record: IntakeRecord) -> None:
    notification = record.body
    if isinstance(notification, S3TestEvent):
        logger.info("S3 test event: the notification is configured", extra={"bucket": notification.Bucket})
        ignored(notification.Event)
        return
    for s3_record in notification.Records:
        if not is_object_creation(s3_record.eventName):
            key = unquote_plus(s3_record.s3.object.key) if s3_record.s3.object else None
            logger.info("not an object creation: acknowledged", extra={"event_name": s3_record.eventName, "key": key})
            ignored(s3_record.eventName)
            continue
        drop = drop_from(s3_record, record.messageId)
        logger.set_correlation_id(Submitter.run_id(drop.source))
        outcome = submitter.submit(drop)
        logger.info("drop handled", extra={"outcome": outcome.kind, "key": drop.source.key, "team": outcome.team})
        count(outcome)


def ignored(event_name: str) -> None:
    """A notification that is not an object creation: counted by its name (S3 has a few dozen)."""
    dimension_metric("IgnoredNotifications", 1, event_name=event_name)


def count(outcome: Outcome) -> None:
    """EMF metrics by team (and by queue for jobs), for the dashboard and the alarms."""
    if outcome.kind in {"duplicate", "in_progress"}:
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        return
    if outcome.kind == "ignored":
        metrics.add_metric(name="IgnoredObjects", unit=MetricUnit.Count, value=1)
        return
    team = outcome.team or "unknown"
    dimension_metric("RunsSubmitted" if outcome.kind == "submitted" else "RunsRejected", 1, team=team)
    for queue in sorted({job.queue for job in outcome.jobs}):
        jobs = sum(1 for job in outcome.jobs if job.queue == queue)
        dimension_metric("JobsSubmitted", jobs, team=team, queue=queue)
    if outcome.seconds_since_drop is not None:
        dimension_metric("DropToSubmitSeconds", outcome.seconds_since_drop, unit=MetricUnit.Seconds, team=team)


def recover(records: list[dict[str, Any]]) -> PartialItemFailureResponse:
    """A stream batch: each record's new image is a failed job to replace. The first record whose
    recovery fails is reported: the stream hands it over again, with every record after it."""
    metrics.add_metric(name="RecoveryRecords", unit=MetricUnit.Count, value=len(records))
    for record in records:
        images = record.get("dynamodb", {})
        try:
            failed = JobRecord.model_validate(deserialize(images.get("NewImage", {})))
        except ValidationError:
            logger.exception(
                "a stream record that is not a job's record: skipped", extra={"event_id": record.get("eventID")}
            )
            metrics.add_metric(name="UnreadableRecoveries", unit=MetricUnit.Count, value=1)
            continue
        logger.set_correlation_id(failed.run_id)
        try:
            recovered = recoverer().recover(failed)
        except Exception:
            logger.exception("recovery failed; the stream hands it over again", extra={"job_id": failed.job_id})
            return {"batchItemFailures": [{"itemIdentifier": str(images.get("SequenceNumber", ""))}]}
        logger.info("recovery handled", extra={"job_id": failed.job_id, "outcome": recovered.kind})
        count_recovery(failed, recovered)
    return {"batchItemFailures": []}


def count_recovery(failed: JobRecord, recovered: Recovered) -> None:
    """Recoveries by team and outcome (recovered, done_before, not_due, run_ended, impossible)."""
    dimension_metric("Recoveries", 1, team=failed.team, outcome=recovered.kind)
    if recovered.kind == "recovered":
        dimension_metric("RecoveryJobsSubmitted", len(recovered.job_ids) - recovered.adopted, team=failed.team)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    if records and records[0].get("eventSource") == "aws:dynamodb":
        return recover(records)
    metrics.add_metric(name="IntakeRecords", unit=MetricUnit.Count, value=len(records))
    failed = intake(records, context.get_remaining_time_in_millis)
    failures: list[PartialItemFailures] = [{"itemIdentifier": message_id} for message_id in failed]
    unrecorded = submitter.flush()  # the batch's records, written together; only a drop that failed returns
    if unrecorded:
        metrics.add_metric(name="UnrecordedDrops", unit=MetricUnit.Count, value=len(unrecorded))
    failures += [{"itemIdentifier": message_id} for message_id in sorted(unrecorded)]
    return {"batchItemFailures": failures}


def intake(records: list[dict[str, Any]], time_left_ms: Callable[[], int]) -> list[str]:
    """Each SQS record read and handled on its own; the message ids of those that failed (a partial
    batch response: SQS delivers them again), as Powertools' BatchProcessor reports them, and of those
    left unhandled for want of time (`TIME_FOR_A_DROP_MS`)."""
    failed: list[str] = []
    for index, raw in enumerate(records):
        if time_left_ms() < TIME_FOR_A_DROP_MS:
            left = [str(record.get("messageId")) for record in records[index:]]
            logger.warning(
                "too little time left for another drop; the rest go back to the queue",
                extra={"messages": left, "time_left_ms": time_left_ms()},
            )
            metrics.add_metric(name="DropsLeftForTime", unit=MetricUnit.Count, value=len(left))
            return failed + left

        try:
            handle_record(IntakeRecord.model_validate(raw))
        except ClaimHeld as held:  # SQS delivered it twice at once: it comes back once the holder is done
            logger.warning("message held by another invocation; SQS delivers it again", extra={"error": str(held)})
            metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
            failed.append(str(raw.get("messageId")))
        except Exception:  # one bad message never harms its batch
            # Logged whole (it costs the message a receive, and the DLQ after the last): what failed and why.
            logger.exception("record failed; SQS delivers it again", extra={"message_id": raw.get("messageId")})
            failed.append(str(raw.get("messageId")))
    return failed
