"""Bring back soon a Batch event that arrived before its job's record.

Batch can tell of a job (PENDING, RUNNABLE) within seconds of SubmitJob, and
the submit function writes its records after submitting, for its whole batch
of drops; such an event is returned to the tracking queue. Left alone it
would come back after the queue's visibility timeout (6 minutes), and the
job would look silent that long. So its visibility is cut to a short delay
that grows with each receive: 10 s, 30 s, 90 s, 270 s, then 300 s. The 8
receives before the dead-letter queue still span ~22 minutes, longer than a
crashed submit takes to be retried (the intake queue's 12-minute visibility
timeout), after which the record exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

GROWTH = 3
LONGEST_DELAY_SECONDS = 300
"""Below the tracking queue's visibility timeout (360 s): never later than SQS alone would be."""
MAX_BATCH_ENTRIES = 10


@dataclass(frozen=True)
class Returned:
    """A message the function hands back to its queue."""

    receipt_handle: str
    receive_count: int
    """SQS's ApproximateReceiveCount: 1 on the first delivery."""


def retry_delay_seconds(receive_count: int, first_delay_seconds: int) -> int:
    return min(LONGEST_DELAY_SECONDS, first_delay_seconds * int(GROWTH ** max(0, receive_count - 1)))


class EarlyRetry:
    def __init__(self, client: SQSClient, queue_url: str, *, first_delay_seconds: int = 10) -> None:
        self.client = client
        self.queue_url = queue_url
        self.first_delay_seconds = first_delay_seconds

    def soon(self, returned: Sequence[Returned]) -> None:
        """Make these messages visible again after their delay.

        Best effort: if SQS refuses, the messages still come back, after the visibility timeout.
        """
        for start in range(0, len(returned), MAX_BATCH_ENTRIES):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "ReceiptHandle": message.receipt_handle,
                    "VisibilityTimeout": retry_delay_seconds(message.receive_count, self.first_delay_seconds),
                }
                for index, message in enumerate(returned[start : start + MAX_BATCH_ENTRIES])
            ]
            try:
                failed = self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries).get(
                    "Failed", []
                )
            except (BotoCoreError, ClientError) as exc:
                logger.warning(
                    "early retry not arranged; the messages return after the visibility timeout", exc_info=exc
                )
                continue
            if failed:
                logger.warning(
                    "early retry not arranged for some messages; they return after the visibility timeout",
                    extra={"failed": [entry.get("Code") for entry in failed]},
                )
