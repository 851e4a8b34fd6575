"""Which events have been posted to Slack: one small marker item per event in the records table.

SNS delivers at least once, so the same event (the same `event_id`: the same
job reaching the same status) can reach the notify function twice, even at
the same moment. Before posting, the function claims the event with a
conditional PutItem; only the claim's winner posts.

Item: PK `NOTIFIED#<event id>`, SK `NOTIFIED`; `state` is `posting` while a
post is under way and `posted` after it; `claimed_at` (epoch seconds) and
`claim_id` say whose claim it is; `expires_at` (epoch seconds, 14 days on)
lets DynamoDB's TTL remove it. No index key is set, so the item stays out of
every index.

A claim whose post failed is deleted (`release`), so Lambda's retry can post.
A claim left `posting` by an invocation that died (a crash, a time-out) is
taken over once it is older than `stale_after`, longer than the function can
run; until then the event counts as in progress, not as posted, so the retry
is not mistaken for a duplicate.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.errors import BatchdropError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MARKER_SK = "NOTIFIED"
DEFAULT_RETENTION = timedelta(days=14)
DEFAULT_STALE_AFTER = timedelta(seconds=90)

ClaimOutcome = Literal["claimed", "posted", "in_progress"]


class NotificationLogUnavailable(BatchdropError):
    """DynamoDB did not answer (after the client's retries): the event is retried later."""


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    event_id: str
    claim_id: str
    """Ours when `outcome` is `claimed`; `confirm` and `release` act only on this claim."""


def marker_key(event_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"NOTIFIED#{event_id}"}, "SK": {"S": MARKER_SK}}


class NotificationLog:
    """Claims, confirms and releases the marker of an event. The DynamoDB client is injected."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.retention = retention
        self.stale_after = stale_after
        self.clock = clock

    def claim(self, event_id: str) -> Claim:
        """`claimed`: post it. `posted`: someone did. `in_progress`: someone is posting it right now."""
        now = int(self.clock())
        claim_id = uuid.uuid4().hex
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._marker(event_id, "posting", claim_id, now),
                ConditionExpression="attribute_not_exists(PK) OR (#state = :posting AND claimed_at < :stale_before)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":posting": {"S": "posting"},
                    ":stale_before": {"N": str(now - int(self.stale_after.total_seconds()))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise NotificationLogUnavailable(f"cannot claim event {event_id}: {exc}") from exc
            stored: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            if stored.get("claim_id", {}).get("S") == claim_id:
                # botocore re-sent our claim after the first copy was applied (its answer was lost): ours
                return Claim(outcome="claimed", event_id=event_id, claim_id=claim_id)
            state = stored.get("state", {}).get("S")
            return Claim(outcome="in_progress" if state == "posting" else "posted", event_id=event_id, claim_id="")
        except BotoCoreError as exc:
            raise NotificationLogUnavailable(f"cannot claim event {event_id}: {exc}") from exc
        return Claim(outcome="claimed", event_id=event_id, claim_id=claim_id)

    def confirm(self, claim: Claim) -> None:
        """The post went out: the marker now says so, for as long as the retention."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._marker(claim.event_id, "posted", claim.claim_id, int(self.clock())),
            )
        except (ClientError, BotoCoreError) as exc:
            # The message is in Slack already; raising would post it again on retry. The `posting`
            # marker left behind still stops duplicates until it is stale.
            raise NotificationLogUnavailable(f"posted event {claim.event_id}, but cannot record it: {exc}") from exc

    def release(self, claim: Claim) -> None:
        """Forget our claim (the post failed), so a retry can post. Someone else's claim is left alone."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=marker_key(claim.event_id),
                ConditionExpression="claim_id = :mine",
                ExpressionAttributeValues={":mine": {"S": claim.claim_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return
            raise NotificationLogUnavailable(f"cannot release event {claim.event_id}: {exc}") from exc
        except BotoCoreError as exc:
            raise NotificationLogUnavailable(f"cannot release event {claim.event_id}: {exc}") from exc

    def _marker(self, event_id: str, state: str, claim_id: str, now: int) -> dict[str, Any]:
        return {
            **marker_key(event_id),
            "state": {"S": state},
            "claim_id": {"S": claim_id},
            "claimed_at": {"N": str(now)},
            "expires_at": {"N": str(now + int(self.retention.total_seconds()))},
        }
