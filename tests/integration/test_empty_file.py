"""An empty file is a drop like any other (issue 11, defect 6): rejected, with a receipt, a record and an event.

S3 answers a Range GET of a zero-byte object with 416 InvalidRange (and so does the emulator). The submit
function knows the size from the notification and does not ask; where the size is not known, the 416 itself
says the file is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchdrop.gateways.bucket import JobsBucket, SpecUnreadable
from batchdrop.spec.documents import MAX_DOCUMENT_BYTES
from batchdrop.store.records import SpecSource
from tests.integration.conftest import LocalStack
from tests.integration.test_submit import run_of

Invoke = Callable[[dict[str, Any]], Any]


def test_the_emulator_refuses_a_range_of_an_empty_object_as_s3_does(local_stack: LocalStack) -> None:
    local_stack.upload("incoming/vision/empty.yaml", b"")
    with pytest.raises(ClientError) as caught:
        local_stack.client("s3").get_object(
            Bucket=local_stack.bucket, Key="incoming/vision/empty.yaml", Range=f"bytes=0-{MAX_DOCUMENT_BYTES}"
        )
    assert caught.value.response["Error"]["Code"] == "InvalidRange"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_an_empty_file_of_unknown_size_is_read_as_empty(local_stack: LocalStack) -> None:
    """Without the notification's size, the read itself meets the 416 and says the file is empty."""
    upload = local_stack.upload("incoming/vision/empty.yaml", b"")
    source = SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id, etag=upload.etag)
    with pytest.raises(SpecUnreadable) as caught:
        JobsBucket(local_stack.client("s3")).read_spec(source, size=None)
    assert (caught.value.problem.code, caught.value.problem.message) == ("empty", "the file is empty")


def test_an_empty_file_is_rejected_with_receipt_record_and_event(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    upload = local_stack.upload("incoming/vision/empty.yaml", b"")
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}, "a bad file is not retried"
    assert local_stack.batch_jobs() == []
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected"
    assert [(problem.code, problem.message) for problem in run.problems] == [("empty", "the file is empty")]
    receipt = local_stack.receipt("receipts/vision/empty.yaml.json")
    assert receipt["status"] == "rejected"
    assert [problem["code"] for problem in receipt["problems"]] == ["empty"]
    (published,) = local_stack.published_events()
    assert published["body"]["type"] == "run.rejected"
    assert published["body"]["problems"][0]["message"] == "the file is empty"
