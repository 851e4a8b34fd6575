"""Publishing batchdrop events to the SNS topic, ten to a call."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.events.contract import _Event
from batchdrop.limits import SNS_MESSAGE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef, PublishBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

MAX_BATCH_ENTRIES = 10


class EventPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, events: Sequence[_Event]) -> list[_Event]:
        """Publish every event, batched; entries SNS refuses are retried once, alone. The events that
        could still not be published (the caller keeps them and tries again later)."""
        failed: list[_Event] = []
        for chunk in _chunks(events):
            entries: list[PublishBatchRequestEntryTypeDef] = [
                {"Id": str(index), "Message": event.body(), "MessageAttributes": _attributes(event)}
                for index, event in enumerate(chunk)
            ]
            try:
                response = self.client.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("PublishBatch failed; publishing one by one", extra={"error": str(exc)})
                failed.extend(chunk)
                continue
            failed.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        unpublished: list[_Event] = []
        for event in failed:
            try:
                self.client.publish(TopicArn=self.topic_arn, Message=event.body(), MessageAttributes=_attributes(event))
            except (ClientError, BotoCoreError) as exc:
                logger.warning("event not published", extra={"event_id": event.event_id, "error": str(exc)})
                unpublished.append(event)
        return unpublished


def _attributes(event: _Event) -> dict[str, MessageAttributeValueTypeDef]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in event.attributes().items()}


def _chunks(events: Sequence[_Event]) -> list[list[_Event]]:
    """Ten to a batch, and never more than SNS takes in one request (every event fits alone: `fit`)."""
    chunks: list[list[_Event]] = []
    current: list[_Event] = []
    size = 0
    for event in events:
        length = len(event.body().encode())
        if current and (len(current) == MAX_BATCH_ENTRIES or size + length > SNS_MESSAGE_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(event)
        size += length
    if current:
        chunks.append(current)
    return chunks
