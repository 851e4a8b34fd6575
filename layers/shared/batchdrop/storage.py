"""The jobs bucket: spec files read from `incoming/<team>/…`, receipts written to `receipts/<team>/…`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.documents import MAX_DOCUMENT_BYTES, empty_file, too_large
from batchdrop.errors import Problem
from batchdrop.records import SpecSource

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INCOMING = "incoming/"
RECEIPTS = "receipts/"


@dataclass(frozen=True)
class DropLocation:
    team: str
    relative_path: str
    """The path below `incoming/<team>/`; the receipt keeps it."""

    @property
    def receipt_key(self) -> str:
        return f"{RECEIPTS}{self.team}/{self.relative_path}.json"


def locate(key: str) -> DropLocation | None:
    """`incoming/<team>/<path>` -> its team and path; None for any other key."""
    if not key.startswith(INCOMING):
        return None
    team, _, relative = key[len(INCOMING) :].partition("/")
    if not team or not relative or relative.endswith("/"):
        return None
    return DropLocation(team=team, relative_path=relative)


class SpecUnreadable(Exception):  # an outcome (the file is rejected), not a failure of batchdrop
    """The object cannot become a spec for a reason a user should be told (it is a rejection)."""

    def __init__(self, problem: Problem, *, write_receipt: bool = True) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.write_receipt = write_receipt


class JobsBucket:
    """Reads spec objects and writes receipts. The client is injected."""

    def __init__(self, client: S3Client) -> None:
        self.client = client

    def read_spec(self, source: SpecSource, size: int | None = None) -> bytes:
        """The spec's bytes, exactly the uploaded version; `SpecUnreadable` when that cannot be."""
        if size is not None and size > MAX_DOCUMENT_BYTES:
            raise SpecUnreadable(too_large(size))
        if size == 0:  # the notification says so: no request (S3 would refuse the Range of an empty object)
            raise SpecUnreadable(empty_file())
        arguments: dict[str, Any] = {
            "Bucket": source.bucket,
            "Key": source.key,
            "Range": f"bytes=0-{MAX_DOCUMENT_BYTES}",  # one byte more than allowed: enough to tell
        }
        if source.version_id and source.version_id != "null":
            arguments["VersionId"] = source.version_id
        elif source.etag:
            arguments["IfMatch"] = f'"{source.etag}"'
        try:
            response = self.client.get_object(**arguments)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "NoSuchVersion", "404"}:
                raise SpecUnreadable(
                    Problem(path="", code="missing", message="the file was deleted before batchdrop could read it")
                ) from exc
            if code in {"InvalidRange", "416"}:  # the size was not known: S3 refuses a Range only of 0 bytes
                raise SpecUnreadable(empty_file()) from exc
            if code in {"PreconditionFailed", "412"}:
                raise SpecUnreadable(
                    Problem(
                        path="",
                        code="superseded",
                        message="the file was replaced before batchdrop could read it; the newer upload runs instead",
                    ),
                    write_receipt=False,  # the newer upload's receipt has the same key
                ) from exc
            raise
        data: bytes = response["Body"].read()
        total = _total_size(response.get("ContentRange"), len(data))
        if total > MAX_DOCUMENT_BYTES:
            raise SpecUnreadable(too_large(total))
        return data

    def write_receipt(self, bucket: str, key: str, receipt: dict[str, Any]) -> None:
        self.client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(receipt, indent=2, ensure_ascii=False).encode("utf-8"),
            ContentType="application/json",
        )


def _total_size(content_range: str | None, fallback: int) -> int:
    """`bytes 0-262144/300000` -> 300000."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return fallback
