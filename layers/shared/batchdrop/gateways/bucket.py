"""The jobs bucket: spec files read from `incoming/<team>/…`, receipts written to `receipts/<team>/…`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.errors import BatchdropError, Problem
from batchdrop.limits import S3_KEY_BYTES
from batchdrop.spec.documents import MAX_DOCUMENT_BYTES, empty_file, size_problem, too_large
from batchdrop.store.records import SpecSource

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INCOMING = "incoming/"
RECEIPTS = "receipts/"
RUNS = "runs/"
"""`runs/<run id>/receipt.json`: every run's own receipt, even once a newer upload of its key has
taken the receipt path (S3 does not order its notifications: the older upload may be decided last)."""
RECEIPT_WRITE_ATTEMPTS = 5


class ReceiptNotWritten(BatchdropError):
    """The receipt path kept changing under us (other uploads of the same key being decided)."""


NO_TEAM = "_no_team"
"""The receipt folder of a file dropped directly under `incoming/` (`receipts/_no_team/<name>.json`): it is
rejected, and its uploader finds why there. A team of this name would share the folder: do not make one."""


@dataclass(frozen=True)
class DropLocation:
    team: str
    relative_path: str
    """The path below `incoming/<team>/`; the receipt keeps it."""
    in_team_folder: bool = True
    """False for a file directly under `incoming/`: its team is `NO_TEAM`, and it is rejected."""

    @property
    def receipt_key(self) -> str:
        """`receipts/<team>/<path>.json`; a path too long for S3's key limit keeps its head and a hash
        of the whole (`…~<hash>.json`), so it stays unique and still reads as the file's."""
        key = f"{RECEIPTS}{self.team}/{self.relative_path}.json"
        if len(key.encode()) <= S3_KEY_BYTES:
            return key
        suffix = "~" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".json"
        head = key.encode()[: S3_KEY_BYTES - len(suffix)].decode("utf-8", errors="ignore")
        return head + suffix


def run_receipt_key(run_id: str) -> str:
    return f"{RUNS}{run_id}/receipt.json"


def run_report_key(run_id: str) -> str:
    return f"{RUNS}{run_id}/report.html"


def report_key(receipt_key: str) -> str:
    """The report beside a receipt: `receipts/<team>/<path>.report.html` for `receipts/<team>/<path>.json`."""
    return receipt_key.removesuffix(".json") + ".report.html"


def upload_order(source: SpecSource) -> str:
    """Sorts as the uploads of one key happened: S3's sequencer, zero-padded (S3's documented way to
    compare two), or empty where a notification carried none."""
    return (source.sequencer or "").rjust(32, "0") if source.sequencer else ""


def locate(key: str) -> DropLocation | None:
    """`incoming/<team>/<path>` -> its team and path; None for any other key."""
    if not key.startswith(INCOMING):
        return None
    team, _, relative = key[len(INCOMING) :].partition("/")
    if not team or not relative or relative.endswith("/"):
        return None
    return DropLocation(team=team, relative_path=relative)


def locate_drop(key: str) -> DropLocation | None:
    """Where a dropped object's run belongs: `locate`'s answer, or for a file directly under `incoming/`
    (no team folder) `NO_TEAM` and its name, so that its rejection has a receipt. None for a key outside
    `incoming/` and for a folder (a key ending in `/`, as the console's "Create folder" makes): not files
    anyone dropped."""
    if not key.startswith(INCOMING) or key.endswith("/"):
        return None
    location = locate(key)
    if location is not None:
        return location
    return DropLocation(team=NO_TEAM, relative_path=key[len(INCOMING) :].lstrip("/"), in_team_folder=False)


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
        # The notification's size decides first: no request (S3 would refuse the Range of an empty object).
        if size is not None and (problem := size_problem(size)) is not None:
            raise SpecUnreadable(problem)
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
        self.client.put_object(Bucket=bucket, Key=key, Body=_receipt_body(receipt), ContentType="application/json")

    def write_report(self, bucket: str, key: str, page: str) -> None:
        self.client.put_object(
            Bucket=bucket, Key=key, Body=page.encode("utf-8"), ContentType="text/html; charset=utf-8"
        )

    def receipt_run_id(self, bucket: str, key: str) -> str | None:
        """The run the receipt at `key` is of; None when there is none (or it is not one batchdrop reads)."""
        try:
            stored = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in {"NoSuchKey", "404"}:
                return None
            raise
        try:
            found = json.loads(stored).get("run_id")
        except (ValueError, AttributeError):
            return None
        return found if isinstance(found, str) else None

    def write_newest_receipt(self, bucket: str, key: str, receipt: dict[str, Any], order: str) -> bool:
        """Write the receipt at its key's receipt path unless a newer upload's receipt is there; False
        if one is. Conditional writes (If-Match / If-None-Match) make the check and the write one step,
        whichever upload of the key is decided last."""
        body = _receipt_body(receipt)
        if self._put_if(bucket, key, body, if_none_match="*"):  # the common case: the key's first receipt
            return True
        for _ in range(RECEIPT_WRITE_ATTEMPTS):
            try:
                current = self.client.get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) not in {"NoSuchKey", "404"}:
                    raise
                written = self._put_if(bucket, key, body, if_none_match="*")
            else:
                if _holds_newer(current["Body"].read(), receipt["run_id"], order):
                    return False
                written = self._put_if(bucket, key, body, if_match=current["ETag"])
            if written:
                return True
        raise ReceiptNotWritten(f"s3://{bucket}/{key} kept changing; retried later")

    def _put_if(self, bucket: str, key: str, body: bytes, *, if_match: str = "", if_none_match: str = "") -> bool:
        """A conditional PutObject; False if its condition did not hold (someone wrote the key meanwhile)."""
        try:
            if if_match:
                self.client.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfMatch=if_match
                )
            else:
                self.client.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch=if_none_match
                )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in {
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            }:
                return False
            raise
        return True


def _holds_newer(stored: bytes, run_id: str, order: str) -> bool:
    """Whether the receipt stored at a key's receipt path is another, newer upload's."""
    try:
        receipt = json.loads(stored)
        stored_order = upload_order(SpecSource.model_validate(receipt.get("source", {})))
    except ValueError:  # not a receipt batchdrop can read: ours replaces it
        return False
    return bool(receipt.get("run_id") != run_id and stored_order > order)


def _receipt_body(receipt: dict[str, Any]) -> bytes:
    return json.dumps(receipt, indent=2, ensure_ascii=False).encode("utf-8")


def _total_size(content_range: str | None, fallback: int) -> int:
    """`bytes 0-262144/300000` -> 300000."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return fallback
