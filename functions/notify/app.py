"""notify: batchdrop events, delivered by the SNS topic, become Slack messages in the team's channel.

Thin on purpose: parse the SNS records, read each message as a batchdrop
event, hand it to the domain's `Notifier`, count what happened. When a post
fails the handler raises: SNS invokes this function asynchronously, so
Lambda retries the event and then sends it to the on-failure destination.
Tracking never waits on Slack: it only publishes to the topic.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from batchdrop.notify.notifier import Delivery, NotificationFailed, NotificationInProgress, read_event
from batchdrop.wiring.notify import build_notifier
from batchdrop.wiring.settings import NotifySettings, load_settings
from batchdrop.wiring.snapstart import register_snapshot_hooks
from batchdrop.wiring.telemetry import dimension_metric

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
notifier = build_notifier(load_settings(NotifySettings))
register_snapshot_hooks()


# The SNS record as this function reads it: Powertools' parser models would import every event model
# it has (a cold start's ~10 ms) for the two fields read here.
class MessageAttribute(BaseModel):
    Type: str
    Value: str


class EventNotification(BaseModel):
    Message: str
    """The event's JSON body (`batchdrop.event/v1`)."""
    MessageAttributes: dict[str, MessageAttribute] | None = None


class EventRecord(BaseModel):
    Sns: EventNotification


class SnsEvent(BaseModel):
    Records: list[EventRecord]


def handle_record(record: EventRecord) -> Delivery | None:
    notification = record.Sns
    event = read_event(notification.Message)
    if event is None:
        attributes = notification.MessageAttributes or {}
        kind = attributes["type"].Value if "type" in attributes else "unknown"
        logger.warning("an event type this function does not know: not posted", extra={"event_type": kind})
        dimension_metric("SlackSkipped", team="unknown", reason="unknown_type")
        return None
    logger.set_correlation_id(event.run_id)
    logger.append_keys(event_id=event.event_id, event_type=event.type, team=event.team)
    try:
        delivery = notifier.notify(event)
    except NotificationInProgress:
        logger.info("another invocation is posting this event; retried later")
        raise
    except NotificationFailed:
        dimension_metric("SlackFailures", team=event.team)
        raise
    if delivery.outcome == "posted":
        dimension_metric("SlackPosts", team=delivery.team)
    else:
        dimension_metric("SlackSkipped", team=delivery.team, reason=delivery.reason or "unknown")
    return delivery


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, int]:
    records = SnsEvent.model_validate(event).Records
    metrics.add_metric(name="EventsReceived", unit=MetricUnit.Count, value=len(records))
    deliveries = [handle_record(record) for record in records]  # SNS sends one; a failure raises for all
    return {
        "posted": sum(1 for delivery in deliveries if delivery and delivery.outcome == "posted"),
        "skipped": sum(1 for delivery in deliveries if not delivery or delivery.outcome == "skipped"),
    }
