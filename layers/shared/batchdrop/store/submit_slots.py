"""SubmitSlots: the account's SubmitJob calls as one schedule every submit instance books its calls on.

Layout: PK `RATE#SubmitJob`, SK `SLOTS`, `kind: submit_slots`, `next`: the epoch second at which the
next free slot begins. A booking moves `next` on by the time it books (one slot is 1 / the rate);
the booker's slots begin where `next` stood, so no two calls of any instances share a slot and,
however many instances book, the calls keep to the rate. An instance books only when it has a call
to make, so a share an idle instance does not use is not lost (as it is when each instance paces
itself to rate / instances).

One write a booking (an instance books a few slots at once: `gateways/submit_rate`), and never a
retry loop: while the schedule is busy (`next` ahead of now, within the horizon) an atomic ADD moves
it on; when it has fallen behind (nobody booked for a while), or stands beyond the horizon, a
conditional SET starts it again at now; the two conditions exclude each other, and a lost race only
sends the booking to the other branch. The horizon is as far ahead as the instances' bookings can
carry the schedule (each holds at most one booking); a schedule beyond it was carried there by
something else (a host's clock far ahead, ADDs that botocore re-sent after they were applied: slots
nobody uses), and is not carried further: left there, every booking would move it on and nobody
would use the slots. No stream consumer reads this kind (the outbox's filters name theirs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.errors import BatchdropError
from batchdrop.store.items import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SLOTS_KIND = "submit_slots"
SLOTS_KEY: dict[str, Any] = {"PK": {"S": "RATE#SubmitJob"}, "SK": {"S": "SLOTS"}}
_ATTEMPTS = 4
"""Each branch's condition fails only when another instance moved `next` across now in between."""


class SlotsUnavailable(BatchdropError):
    """The schedule could not be booked (DynamoDB failing, or lost races past every attempt)."""


class SubmitSlots:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def book(self, slot_seconds: float, now: float, horizon: float) -> float:
        """Book the next `slot_seconds` of the schedule: the epoch second they begin (now or later, and
        at most `horizon` seconds ahead). Raises `SlotsUnavailable` however DynamoDB fails."""
        bounds = {":now": {"N": _number(now)}, ":horizon": {"N": _number(now + horizon)}}
        for _ in range(_ATTEMPTS):
            try:
                return self._after_the_last(slot_seconds, bounds)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise SlotsUnavailable(f"cannot book a SubmitJob slot: {exc}") from exc
            except BotoCoreError as exc:  # no answer (time-out, connection): botocore's retries spent
                raise SlotsUnavailable(f"cannot book a SubmitJob slot: {exc}") from exc
            try:
                return self._from_now(slot_seconds, now, bounds)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise SlotsUnavailable(f"cannot book a SubmitJob slot: {exc}") from exc
            except BotoCoreError as exc:
                raise SlotsUnavailable(f"cannot book a SubmitJob slot: {exc}") from exc
        raise SlotsUnavailable("cannot book a SubmitJob slot: the schedule kept moving")

    def _after_the_last(self, slot_seconds: float, bounds: dict[str, Any]) -> float:
        """The busy schedule: the slot after the last one booked."""
        response = self.client.update_item(
            TableName=self.table_name,
            Key=SLOTS_KEY,
            UpdateExpression="ADD #next :slot",
            ConditionExpression="#next BETWEEN :now AND :horizon",
            ExpressionAttributeNames={"#next": "next"},
            ExpressionAttributeValues={":slot": {"N": _number(slot_seconds)}, **bounds},
            ReturnValues="UPDATED_NEW",
        )
        return float(response["Attributes"]["next"]["N"]) - slot_seconds

    def _from_now(self, slot_seconds: float, now: float, bounds: dict[str, Any]) -> float:
        """The idle schedule (or none yet, or one carried beyond the horizon): start it again at now."""
        self.client.update_item(
            TableName=self.table_name,
            Key=SLOTS_KEY,
            UpdateExpression="SET #next = :after, #kind = :kind",
            ConditionExpression="attribute_not_exists(#next) OR #next < :now OR #next > :horizon",
            ExpressionAttributeNames={"#next": "next", "#kind": "kind"},
            ExpressionAttributeValues={
                ":after": {"N": _number(now + slot_seconds)},
                ":kind": {"S": SLOTS_KIND},
                **bounds,
            },
        )
        return now


def _number(seconds: float) -> str:
    return f"{seconds:.6f}"
