"""S3 as it really behaves (issue 12): what reaches the intake queue besides a clean upload.

Deletes, delete markers and S3's test event are acknowledged and counted, never
made runs; keys are read in any case, and a file the stack cannot run gets a
rejected receipt the uploader can find.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.conftest import EXAMPLES, load_event
from tests.integration.conftest import LocalStack, Uploaded

Invoke = Callable[[dict[str, Any]], Any]
SPECS = EXAMPLES / "specs"


def notification_of(name: str, stack: LocalStack, key: str, version_id: str | None = None) -> dict[str, Any]:
    """A committed event (`events/submit/<name>.json`) as S3 would send it for this key of the local bucket:
    its shape and its event name are the file's."""
    event = load_event(f"submit/{name}")
    (record,) = event["Records"]
    body = json.loads(record["body"])
    s3 = body["Records"][0]["s3"]
    s3["bucket"]["name"] = stack.bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{stack.bucket}"
    s3["object"]["key"] = quote_plus(key, safe="/")
    if version_id is not None:
        s3["object"]["versionId"] = version_id
    record["body"] = json.dumps(body, separators=(",", ":"))
    return event  # type: ignore[no-any-return]


def emitted_metrics(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def ignored_counts(out: str) -> dict[str, float]:
    """IgnoredNotifications by event name, from the EMF lines the handler printed."""
    counts: dict[str, float] = {}
    for metric in emitted_metrics(out):
        if "IgnoredNotifications" in metric:
            counts[metric["event_name"]] = counts.get(metric["event_name"], 0) + sum(metric["IgnoredNotifications"])
    return counts


def runs_of_key(stack: LocalStack, key: str) -> list[dict[str, Any]]:
    items = stack.client("dynamodb").scan(TableName=stack.table)["Items"]
    return [item for item in items if item.get("kind", {}).get("S") == "run" and key in json.dumps(item)]


# ---------------------------------------------------------------- not an object creation: never a run


@pytest.mark.parametrize(
    ("event_file", "event_name"),
    [("sqs-s3-delete", "ObjectRemoved:Delete"), ("sqs-s3-delete-marker", "ObjectRemoved:DeleteMarkerCreated")],
)
def test_a_delete_is_acknowledged_counted_and_leaves_the_live_run_alone(
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    capsys: pytest.CaptureFixture[str],
    event_file: str,
    event_name: str,
) -> None:
    _, submit = submit_function
    key = "incoming/vision/gpu-finetune.yaml"
    upload: Uploaded = local_stack.upload(key, (SPECS / "gpu-finetune.yaml").read_bytes())
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    receipt_key = "receipts/vision/gpu-finetune.yaml.json"
    live = local_stack.receipt(receipt_key)
    assert live["status"] == "submitted"
    capsys.readouterr()

    event = notification_of(event_file, local_stack, key, upload.version_id)
    assert submit(event) == {"batchItemFailures": []}  # acknowledged: SQS deletes it

    assert ignored_counts(capsys.readouterr().out) == {event_name: 1}
    assert len(runs_of_key(local_stack, key)) == 1, "no second run"
    assert local_stack.receipt(receipt_key) == live, "the live run's receipt is untouched"
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.submitted"]
    assert len(local_stack.batch_jobs()) == 1


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectRestore:Completed",
        "ObjectTagging:Put",
        "LifecycleExpiration:Delete",
        "Replication:OperationFailedReplication",
    ],
)
def test_any_event_that_is_not_a_creation_is_never_a_run(
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    capsys: pytest.CaptureFixture[str],
    event_name: str,
) -> None:
    """Even if someone widens the bucket's notification configuration to every event."""
    _, submit = submit_function
    key = "incoming/vision/gpu-finetune.yaml"
    upload = local_stack.upload(key, (SPECS / "gpu-finetune.yaml").read_bytes())
    event = local_stack.s3_event(upload)  # a real object, with its size and ETag: only the name differs
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["eventName"] = event_name
    event["Records"][0]["body"] = json.dumps(body)
    capsys.readouterr()

    assert submit(event) == {"batchItemFailures": []}
    assert ignored_counts(capsys.readouterr().out) == {event_name: 1}
    assert runs_of_key(local_stack, key) == []
    assert local_stack.batch_jobs() == []
    assert local_stack.published_events() == []


def test_the_s3_test_event_is_counted(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], capsys: pytest.CaptureFixture[str]
) -> None:
    _, submit = submit_function
    capsys.readouterr()
    assert submit(load_event("submit/sqs-s3-test-event")) == {"batchItemFailures": []}
    assert ignored_counts(capsys.readouterr().out) == {"s3:TestEvent": 1}
    assert local_stack.published_events() == []
