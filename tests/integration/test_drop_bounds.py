"""One bad drop never harms its neighbours, and what a drop makes batchdrop write always fits (issue 11).

Each test drops files whose content or key reached an AWS limit before (an SNS message over
256 KiB, a DynamoDB item over 400 KB, an S3 key over 1,024 bytes), or whose uploads S3 announced
out of order, beside good drops in the same SQS batch; then checks what a user would see: every
drop recorded, a receipt, one event each, and no good message sent back to the queue.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from batchdrop.gateways.bucket import run_receipt_key
from batchdrop.limits import DYNAMODB_ITEM_BYTES, EVENT_BYTES, S3_KEY_BYTES
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import SpecSource
from tests.conftest import EXAMPLES
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack, Uploaded
from tests.integration.submitting import as_if_redelivered

pytestmark = pytest.mark.integration

Invoke = Callable[[dict[str, Any]], Any]
GOOD = ("gpu-finetune.yaml", "cpu-report.yaml", "triage-experiment.json")


def example(name: str) -> bytes:
    return (EXAMPLES / "specs" / name).read_bytes()


def run_id_of(module: ModuleType, upload: Uploaded) -> str:
    source = SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id, etag=upload.etag)
    return str(module.Submitter.run_id(source))


def drop_good_ones(stack: LocalStack) -> list[Uploaded]:
    team = {"triage-experiment.json": "forecasting", "cpu-report.yaml": "forecasting"}
    return [stack.upload(f"incoming/{team.get(name, 'vision')}/{name}", example(name)) for name in GOOD]


def run_events(stack: LocalStack) -> Counter[tuple[str, str]]:
    return Counter((e["body"]["type"], e["body"]["run_id"]) for e in stack.published_events())


def test_a_rejection_echoing_a_200_kb_value_is_told_within_snss_limit_beside_good_drops(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    huge = "x" * 200_000
    bad = local_stack.upload(
        "incoming/vision/huge.yaml", f"version: 1\nname: huge\njob_definition: trainer\nenvironment: {huge}\n".encode()
    )
    good = drop_good_ones(local_stack)

    assert submit(local_stack.s3_event(bad, *good)) == {"batchItemFailures": []}

    told = local_stack.published_events()
    by_run = Counter(event["body"]["run_id"] for event in told)
    assert by_run == Counter({run_id_of(module, upload): 1 for upload in [bad, *good]}), "each drop told once"
    rejections = [event["body"] for event in told if event["body"]["type"] == "run.rejected"]
    (rejected,) = rejections
    assert len(json.dumps(rejected).encode()) <= EVENT_BYTES
    assert all(len(problem["message"]) < 2_000 for problem in rejected["problems"]), "values are cut, not echoed"
    receipt = local_stack.receipt("receipts/vision/huge.yaml.json")
    assert receipt["status"] == "rejected"
    assert receipt["problems"]


def test_a_drop_whose_records_cannot_be_written_returns_alone_and_its_neighbours_are_done(
    faults: FaultProxy, local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    good = drop_good_ones(local_stack)
    doomed = local_stack.upload("incoming/vision/doomed.yaml", example("gpu-finetune.yaml"))
    # Every write carrying the doomed run's records fails: the batch's write, then its own.
    faults.fail_before("dynamodb", "BatchWriteItem", body_contains=run_id_of(module, doomed), times=None)
    event = local_stack.s3_event(*good, doomed)
    doomed_message = event["Records"][-1]["messageId"]

    assert submit(event) == {"batchItemFailures": [{"itemIdentifier": doomed_message}]}

    assert {run_id for _, run_id in run_events(local_stack)} == {run_id_of(module, upload) for upload in good}
    faults.clear_rules()
    redelivered = local_stack.s3_event(doomed)
    redelivered["Records"][0]["messageId"] = doomed_message  # SQS brings the same message back
    as_if_redelivered(local_stack.client("dynamodb"), local_stack.table)
    assert submit(redelivered) == {"batchItemFailures": []}
    assert run_events(local_stack) == Counter({("run.submitted", run_id_of(module, doomed)): 1})


def test_yaml_aliases_repeated_into_many_fields_still_make_a_record_and_a_receipt(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    value = "v" * 8000
    steps = "\n".join(f"  - {{name: s{index}, command: *big, resources: *big, gpus: *big}}" for index in range(49))
    spec = f"version: 1\nname: alias-spread\nx-anchor: &big {value}\njob_definition: trainer\nsteps:\n{steps}\n"
    upload = local_stack.upload("incoming/vision/aliases.yaml", spec.encode())

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    item = local_stack.client("dynamodb").get_item(
        TableName=local_stack.table, Key={"PK": {"S": f"RUN#{run_id_of(module, upload)}"}, "SK": {"S": "RUN"}}
    )["Item"]
    assert len(json.dumps(item).encode()) < DYNAMODB_ITEM_BYTES
    assert local_stack.receipt("receipts/vision/aliases.yaml.json")["status"] == "rejected"
    assert run_events(local_stack) == Counter({("run.rejected", run_id_of(module, upload)): 1})


def test_a_key_too_long_for_a_receipt_path_gets_a_shortened_one_that_is_recorded(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    key = "incoming/vision/" + "d" * (S3_KEY_BYTES - len("incoming/vision/") - 5) + ".yaml"
    assert len(key.encode()) == S3_KEY_BYTES
    upload = local_stack.upload(key, example("gpu-finetune.yaml"))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    run = RecordQueries(local_stack.client("dynamodb"), local_stack.table).get_run(run_id_of(module, upload))
    assert run is not None
    assert run.status == "submitted"
    assert run.receipt_key is not None
    assert len(run.receipt_key.encode()) <= S3_KEY_BYTES
    assert run.receipt_key.startswith("receipts/vision/ddd")
    assert local_stack.receipt(run.receipt_key)["run_id"] == run.run_id
    assert run_events(local_stack) == Counter({("run.submitted", run.run_id): 1})


def test_the_receipt_path_describes_the_newest_upload_even_when_the_older_is_decided_last(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    key = "incoming/vision/retrain.yaml"
    older = local_stack.upload(key, example("gpu-finetune.yaml"))
    newer = local_stack.upload(key, example("gpu-finetune.yaml").replace(b"name: ", b"name: v2-", 1))
    older_event, newer_event = local_stack.s3_event(older), local_stack.s3_event(newer)  # S3's sequencers

    assert submit(newer_event) == {"batchItemFailures": []}
    assert submit(older_event) == {"batchItemFailures": []}  # S3 does not order its notifications

    receipt = local_stack.receipt("receipts/vision/retrain.yaml.json")
    assert receipt["run_id"] == run_id_of(module, newer)
    older_receipt = json.loads(
        local_stack.client("s3")
        .get_object(Bucket=local_stack.bucket, Key=run_receipt_key(run_id_of(module, older)))["Body"]
        .read()
    )
    assert older_receipt["run_id"] == run_id_of(module, older), "the older run's receipt stays reachable by run id"
    assert older_receipt["status"] == "submitted"
    assert {run_id for _, run_id in run_events(local_stack)} == {run_id_of(module, older), run_id_of(module, newer)}
