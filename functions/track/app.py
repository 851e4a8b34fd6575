"""track: Batch's job state changes, via EventBridge and the tracking SQS queue, into the records.

Thin on purpose: parse each SQS record into a Batch event, hand the batch to
the domain's `Tracker` (it coalesces, orders and applies them), count what
happened, and report the records to retry (partial batch response). An event
that came before its job's record is retried within seconds (`early_retry`),
not after the queue's 6-minute visibility timeout. A record that cannot be
read at all is reported too: after the redrive count it waits in the
dead-letter queue for a person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery
from batchdrop.track.early_retry import Returned
from batchdrop.wiring.build import build_early_retry, build_tracker
from batchdrop.wiring.settings import TrackSettings, load_settings
from batchdrop.wiring.snapstart import register_snapshot_hooks
from batchdrop.wiring.telemetry import dimension_metric, team_month_metrics

if TYPE_CHECKING:  # a type only: importing Powertools' batch utilities costs a cold start ~70 ms
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
settings = load_settings(TrackSettings)
tracker = build_tracker(settings)
early_retry = build_early_retry(settings)
register_snapshot_hooks()


# The SQS record as this function reads it: Powertools' parser models would import every event model it
# has (a cold start's ~10 ms) for these four fields.
class ReceiveAttributes(BaseModel):
    ApproximateReceiveCount: str


class TrackingRecord(BaseModel):
    messageId: str
    receiptHandle: str
    attributes: ReceiveAttributes
    body: str  # an EventBridge event from aws.batch, read by BatchEvent


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    deliveries: list[Delivery] = []
    unreadable: list[str] = []
    received: dict[str, TrackingRecord] = {}
    for raw in event.get("Records", []):
        try:
            record = TrackingRecord.model_validate(raw)
            received[record.messageId] = record
            deliveries.append(Delivery(record.messageId, BatchEvent.model_validate_json(record.body)))
        except ValidationError as exc:
            logger.error("unreadable tracking message", extra={"message_id": raw.get("messageId"), "error": str(exc)})
            unreadable.append(str(raw.get("messageId")))
    result = tracker.track(deliveries)
    if early_retry is not None and result.unrecorded:
        messages = [received[message_id] for message_id in sorted(result.unrecorded)]
        early_retry.soon([Returned(m.receiptHandle, int(m.attributes.ApproximateReceiveCount)) for m in messages])
    metrics.add_metric(name="BatchEvents", unit=MetricUnit.Count, value=len(deliveries))
    for name, value in sorted(result.counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for (team, queue, status), value in sorted(result.ended.items()):
        dimension_metric(f"Jobs{status.capitalize()}", value, team=team, queue=queue)  # JobsSucceeded, JobsFailed
    for team, usd in sorted(result.costs.items()):  # dollars added to each team's month (docs/costs.md)
        dimension_metric("CostUSD", usd, unit=MetricUnit.NoUnit, team=team)
    team_month_metrics(result.months)  # each team's month so far against its budget
    if unreadable:
        metrics.add_metric(name="UnreadableEvents", unit=MetricUnit.Count, value=len(unreadable))
    failed = sorted(result.failed | set(unreadable))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
