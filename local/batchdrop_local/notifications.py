"""Real-shaped S3 notifications inside SQS records, built from the committed `events/` files.

Tests, benchmarks and the local stack all need the notification S3 would send
for an object they uploaded. The shape is taken from `events/submit/` (the
same files the tests use as fixtures); only the object's facts change.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

EVENTS = Path(__file__).resolve().parents[2] / "events"
S3_PUT_IN_SQS = EVENTS / "submit" / "sqs-s3-put.json"
_sequencer = itertools.count(0x0065C7E1B5000000)


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int


def upload(s3: Any, bucket: str, key: str, body: bytes) -> StoredObject:
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return StoredObject(bucket, key, response.get("VersionId"), response["ETag"].strip('"'), len(body))


def s3_notification(stored: StoredObject, *, template: Path = S3_PUT_IN_SQS, index: int = 0) -> dict[str, Any]:
    """The body S3 sends for an `ObjectCreated:Put` of this object (keys URL-encoded as S3 does)."""
    records = json.loads(template.read_text())["Records"]
    record = records[min(index, len(records) - 1)]
    body = json.loads(record["body"])
    s3 = body["Records"][0]["s3"]
    s3["bucket"]["name"] = stored.bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{stored.bucket}"
    s3["object"] = {
        "key": quote_plus(stored.key, safe="/"),
        "size": stored.size,
        "eTag": stored.etag,
        **({"versionId": stored.version_id} if stored.version_id else {}),
        "sequencer": f"{next(_sequencer):018X}",
    }
    body["Records"][0]["eventTime"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body  # type: ignore[no-any-return]


def sqs_event(
    bodies: list[str], *, message_ids: list[str] | None = None, template: Path = S3_PUT_IN_SQS
) -> dict[str, Any]:
    """An SQS event (as Lambda's event source mapping delivers it) carrying these message bodies."""
    records = json.loads(template.read_text())["Records"]
    event_records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(records[min(index, len(records) - 1)])
        record["body"] = body
        record["md5OfBody"] = hashlib.md5(body.encode()).hexdigest()  # noqa: S324  # what SQS computes
        record["messageId"] = message_ids[index] if message_ids else str(uuid.uuid4())
        event_records.append(record)
    return {"Records": event_records}


def s3_put_event(*stored: StoredObject, template: Path = S3_PUT_IN_SQS) -> dict[str, Any]:
    """One SQS event whose records carry these objects' notifications."""
    bodies = [
        json.dumps(s3_notification(item, template=template, index=index), separators=(",", ":"))
        for index, item in enumerate(stored)
    ]
    return sqs_event(bodies, template=template)
