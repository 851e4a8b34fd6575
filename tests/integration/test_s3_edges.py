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


# ---------------------------------------------------------------- keys: the extension in any case, or a receipt


def test_the_bucket_notifies_every_object_under_incoming_whatever_its_extension(local_stack: LocalStack) -> None:
    """S3's suffix filters are case-sensitive: the stack filters by the prefix alone (template.yaml)."""
    resources = local_stack.stack.resolver.template["Resources"]
    (configuration,) = resources["JobsBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert configuration["Event"] == "s3:ObjectCreated:*"
    assert configuration["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]


@pytest.mark.parametrize(
    ("key", "example"),
    [
        ("incoming/vision/GPU-FINETUNE.YAML", "gpu-finetune.yaml"),
        ("incoming/vision/gpu-finetune.Yml", "gpu-finetune.yaml"),
        ("incoming/forecasting/triage.JSON", "triage-experiment.json"),
    ],
)
def test_an_extension_in_any_case_is_read(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], key: str, example: str
) -> None:
    _, submit = submit_function
    upload = local_stack.upload(key, (SPECS / example).read_bytes())
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    team, name = key.split("/")[1:]
    receipt = local_stack.receipt(f"receipts/{team}/{name}.json")
    assert receipt["status"] == "submitted", receipt["problems"]
    assert len(local_stack.batch_jobs()) == 1


def test_another_extension_gets_a_rejected_receipt_naming_the_extensions_read(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _, submit = submit_function
    upload = local_stack.upload("incoming/vision/notes.txt", b"remember to run the sweep\n")
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    receipt = local_stack.receipt("receipts/vision/notes.txt.json")
    assert receipt["status"] == "rejected"
    (problem,) = receipt["problems"]
    assert problem["code"] == "file_type"
    assert ".yaml, .yml or .json (in any case)" in problem["message"]
    assert "`notes.txt`" in problem["message"]
    (event,) = local_stack.published_events()
    assert event["body"]["type"] == "run.rejected"
    assert local_stack.batch_jobs() == []


def test_a_file_under_a_team_not_in_the_platform_config_gets_a_rejected_receipt(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _, submit = submit_function
    upload = local_stack.upload("incoming/astronomy/gpu-finetune.yaml", (SPECS / "gpu-finetune.yaml").read_bytes())
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    receipt = local_stack.receipt("receipts/astronomy/gpu-finetune.yaml.json")
    assert receipt["status"] == "rejected"
    assert receipt["team"] == "astronomy"
    assert any(problem["code"] == "unknown_team" for problem in receipt["problems"])
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.rejected"]


def test_a_folder_is_not_a_drop(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], capsys: pytest.CaptureFixture[str]
) -> None:
    """The console's "Create folder" makes an empty object whose key ends in `/`: acknowledged, no run."""
    _, submit = submit_function
    upload = local_stack.upload("incoming/vision/experiments/", b"")
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    assert '"IgnoredObjects"' in capsys.readouterr().out
    assert local_stack.published_events() == []


# ---------------------------------------------------------------- who dropped the file


def test_who_dropped_the_file_is_on_the_run_and_its_receipt(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    from batchdrop.store.queries import RecordQueries

    _, submit = submit_function
    principal = json.loads(load_event("submit/sqs-s3-put")["Records"][0]["body"])["Records"][0]["userIdentity"]
    assert principal == {"principalId": "AWS:AROA3EXAMPLEROLEID:maria.garcia"}  # the committed sample's
    good = local_stack.upload("incoming/vision/gpu-finetune.yaml", (SPECS / "gpu-finetune.yaml").read_bytes())
    bad = local_stack.upload("incoming/vision/notes.txt", b"not a spec\n")
    assert submit(local_stack.s3_event(good, bad, template="submit/sqs-batch.json")) == {"batchItemFailures": []}

    for name in ("gpu-finetune.yaml", "notes.txt"):
        receipt = local_stack.receipt(f"receipts/vision/{name}.json")
        assert receipt["dropped_by"] == "AWS:AROA3EXAMPLEROLEID:maria.garcia", name
        run = RecordQueries(local_stack.client("dynamodb"), local_stack.table).get_run(receipt["run_id"])
        assert run is not None
        assert run.dropped_by == "AWS:AROA3EXAMPLEROLEID:maria.garcia"


# ---------------------------------------------------------------- no team folder


def test_a_file_directly_under_incoming_gets_a_rejected_receipt_under_no_team(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _, submit = submit_function
    upload = local_stack.upload("incoming/stray.yaml", (SPECS / "cpu-report.yaml").read_bytes())
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    receipt = local_stack.receipt("receipts/_no_team/stray.yaml.json")
    assert receipt["status"] == "rejected"
    assert receipt["team"] == "_no_team"
    (problem,) = receipt["problems"]
    assert problem["code"] == "no_team"
    assert "incoming/<team>/stray.yaml" in problem["message"]
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.rejected"]
    assert local_stack.batch_jobs() == []


def test_a_stray_file_of_another_type_is_told_both(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _, submit = submit_function
    upload = local_stack.upload("incoming/notes.txt", b"hello\n")
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    receipt = local_stack.receipt("receipts/_no_team/notes.txt.json")
    assert [problem["code"] for problem in receipt["problems"]] == ["no_team", "file_type"]
