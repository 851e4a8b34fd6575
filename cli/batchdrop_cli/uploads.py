"""`submit` and `rerun`'s drop: a spec file put under `incoming/<team>/` as `aws s3 cp` would, and the
receipt the stack writes for it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from batchdrop.gateways.bucket import INCOMING, DropLocation
from batchdrop.platform.identity import run_id_for_object
from batchdrop.store.records import Receipt, SpecSource
from batchdrop_cli.operations import OperationFailed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class Upload:
    """A spec file put under `incoming/<team>/`, and the run it becomes."""

    source: SpecSource
    location: DropLocation
    run_id: str


class ReceiptTimedOut(OperationFailed):
    """No receipt for an upload in the time given: the stack has not decided it (yet)."""

    def __init__(self, upload: Upload, waited: float) -> None:
        super().__init__(f"no receipt for {upload.source.uri} after {waited:.0f} s")
        self.upload = upload
        self.waited = waited


class Uploader:
    """Drops spec files into the stack's jobs bucket and reads back their receipts."""

    def __init__(self, *, s3: S3Client, bucket: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.sleep = sleep

    def upload(self, body: bytes, team: str, relative_path: str) -> Upload:
        """Put the file's bytes at `incoming/<team>/<relative path>`, as `aws s3 cp` would."""
        location = DropLocation(team=team, relative_path=relative_path)
        key = f"{INCOMING}{team}/{location.relative_path}"
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        source = SpecSource(
            bucket=self.bucket, key=key, version_id=response.get("VersionId"), etag=response["ETag"].strip('"')
        )
        run_id = run_id_for_object(self.bucket, key, version_id=source.version_id, etag=source.etag)
        return Upload(source=source, location=location, run_id=run_id)

    def wait_for_receipt(self, upload: Upload, *, timeout: float, poll: float = 0.5) -> Receipt:
        """The receipt the submit function writes for this upload (not an earlier upload's at the same key)."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self._receipt(upload)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise ReceiptTimedOut(upload, timeout)
            self.sleep(poll)

    def _receipt(self, upload: Upload) -> Receipt | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=upload.location.receipt_key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        receipt = Receipt.model_validate(json.loads(body))
        if upload.source.version_id:  # a versioned bucket: the run id says which upload it is
            return receipt if receipt.run_id == upload.run_id else None
        return receipt if receipt.source.etag == upload.source.etag else None
