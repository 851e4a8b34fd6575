"""publish: the records table's stream (the outbox) becomes receipts in S3 and events on the SNS topic.

Thin on purpose: read each stream record's old and new image, hand the batch
to the domain's `Teller` (it decides what each change tells), count what
happened, and report the records whose telling failed (partial batch
response): Lambda hands the stream over again from the first of them. Every
event carries an `event_id` that its consumers deduplicate on, so a change
told twice is heard once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchdrop.publish.teller import RecordChange
from batchdrop.store.items import deserialize
from batchdrop.wiring.build import build_teller
from batchdrop.wiring.settings import PublishSettings, load_settings
from batchdrop.wiring.snapstart import register_snapshot_hooks

if TYPE_CHECKING:  # a type only: importing Powertools' batch utilities costs a cold start ~70 ms
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
teller = build_teller(load_settings(PublishSettings))
register_snapshot_hooks()


def change_of(record: dict[str, Any]) -> RecordChange:
    """A stream record (NEW_AND_OLD_IMAGES) as the domain reads it: plain attributes."""
    images = record.get("dynamodb", {})
    old, new = images.get("OldImage"), images.get("NewImage")
    return RecordChange(
        change_id=str(images.get("SequenceNumber", "")),
        old=deserialize(old) if old else None,
        new=deserialize(new) if new else None,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    changes = [change_of(record) for record in event.get("Records", [])]
    told = teller.tell(changes)
    metrics.add_metric(name="RecordChanges", unit=MetricUnit.Count, value=len(changes))
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=told.events)
    metrics.add_metric(name="ReceiptsWritten", unit=MetricUnit.Count, value=told.receipts)
    if told.superseded_receipts:
        metrics.add_metric(name="ReceiptsSuperseded", unit=MetricUnit.Count, value=told.superseded_receipts)
    if told.unreadable:
        metrics.add_metric(name="UnreadableChanges", unit=MetricUnit.Count, value=told.unreadable)
    if told.failed:
        logger.warning(
            "some changes could not be told; the stream hands them over again", extra={"failed": told.failed}
        )
    return {"batchItemFailures": [{"itemIdentifier": change_id} for change_id in told.failed]}
