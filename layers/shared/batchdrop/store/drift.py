"""DriftLog: the daily platform check's findings, one item a day the config and the account disagreed.

Layout (docs/platform-check.md): PK `PLATFORM#drift`, SK `DAY#<yyyy-mm-dd>` (UTC), `kind: platform_drift`.
Written once a day at most (a conditional put): the publish function tells its creation as
`platform.drift` (the records table's stream is the outbox), so a check run twice the same day (a retried
invocation) tells once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.store.items import error_code, serialize
from batchdrop.store.records import timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DRIFT_KIND = "platform_drift"
DRIFT_RETENTION = timedelta(days=90)
MAX_DRIFT_FINDINGS = 100
"""Findings kept on the item (and told): a config of 50 queues and definitions has fewer that disagree."""


def drift_key(day: str) -> dict[str, Any]:
    return {"PK": {"S": "PLATFORM#drift"}, "SK": {"S": f"DAY#{day}"}}


class DriftLog:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def record(
        self, *, at: datetime, config: str, errors: int, warnings: int, findings: Sequence[dict[str, str]]
    ) -> bool:
        """Keep the day's disagreement; False when the day has one already (told once a day)."""
        day = at.date().isoformat()
        item = {
            "kind": DRIFT_KIND,
            "day": day,
            "checked_at": timestamp(at),
            "config": config,
            "errors": errors,
            "warnings": warnings,
            "findings": list(findings[:MAX_DRIFT_FINDINGS]),
            "finding_count": len(findings),
            "expires_at": int((at + DRIFT_RETENTION).timestamp()),
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={**drift_key(day), **serialize(item)},
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
