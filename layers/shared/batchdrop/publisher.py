"""Publishing batchdrop events to the SNS topic, ten to a call."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from batchdrop.errors import BatchdropError
from batchdrop.events import _Event

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024


class PublishFailed(BatchdropError):
    """Some events could not be published; the caller retries the work that made them."""


class EventPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, events: Sequence[_Event]) -> None:
        """Publish every event, batched; entries SNS refuses are retried once, alone."""
        failed: list[_Event] = []
        for chunk in _chunks(events):
            entries: list[PublishBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "Message": event.body(),
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value} for name, value in event.attributes().items()
                    },
                }
                for index, event in enumerate(chunk)
            ]
            response = self.client.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
            failed.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        for event in failed:
            try:
                self.client.publish(
                    TopicArn=self.topic_arn,
                    Message=event.body(),
                    MessageAttributes={
                        name: {"DataType": "String", "StringValue": value} for name, value in event.attributes().items()
                    },
                )
            except Exception as exc:
                raise PublishFailed(f"could not publish event {event.event_id}: {exc}") from exc


def _chunks(events: Sequence[_Event]) -> list[list[_Event]]:
    chunks: list[list[_Event]] = []
    current: list[_Event] = []
    size = 0
    for event in events:
        length = len(event.body().encode())
        if current and (len(current) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(event)
        size += length
    if current:
        chunks.append(current)
    return chunks
