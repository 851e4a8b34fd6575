"""The submit path end to end: S3 drop -> SQS record -> submit handler -> Batch, table, receipt, SNS.

The handler runs as Lambda would run it (its module imported with the
template's environment), against moto over HTTP, with the committed event
files carrying the notifications.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from botocore.exceptions import ClientError

from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import RunRecord
from tests.conftest import EXAMPLES, load_event
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack, Uploaded
from tests.integration.submitting import as_if_redelivered

Invoke = Callable[[dict[str, Any]], Any]
SPECS = EXAMPLES / "specs"


def aws_error(code: str, message: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "SubmitJob")


def example(name: str) -> bytes:
    return (SPECS / name).read_bytes()


def table_of(stack: LocalStack) -> RecordQueries:
    return RecordQueries(stack.client("dynamodb"), stack.table)


def run_of(stack: LocalStack, upload: Uploaded, module: ModuleType) -> RunRecord:
    from batchdrop.store.records import SpecSource

    run_id = module.Submitter.run_id(
        SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id, etag=upload.etag)
    )
    run = table_of(stack).get_run(run_id)
    assert run is not None, "every drop leaves a run record"
    return run


def capture_submissions(module: ModuleType) -> list[dict[str, Any]]:
    """Every SubmitJob request the function's Batch client sends, as sent."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(json.loads(json.dumps(params)))

    module.submitter.batch.client.meta.events.register("provide-client-params.batch.SubmitJob", record)
    return sent


# ---------------------------------------------------------------- the examples, end to end


def test_pipeline_is_submitted_in_order_with_real_dependency_ids(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    sent = capture_submissions(module)
    upload = local_stack.upload("incoming/vision/résumé runs/resnet pipeline.yaml", example("resnet-pipeline.yaml"))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    jobs = {job["jobName"].split("-")[2]: job for job in local_stack.batch_jobs()}
    assert set(jobs) == {"prep", "train", "evaluate"}
    assert jobs["train"]["dependsOn"] == [{"jobId": jobs["prep"]["jobId"]}]
    assert jobs["evaluate"]["dependsOn"] == [{"jobId": jobs["train"]["jobId"]}]
    assert [request["jobName"].split("-")[2] for request in sent] == ["prep", "train", "evaluate"]
    train = sent[1]
    assert train["arrayProperties"] == {"size": 4}
    assert train["jobQueue"].endswith("job-queue/gpu-shared")
    assert sent[0]["jobQueue"].endswith("job-queue/cpu-shared")
    assert train["shareIdentifier"] == "vision"
    assert train["schedulingPriorityOverride"] == 50
    assert train["tags"]["batchdrop:team"] == "vision"
    assert train["tags"]["project"] == "vision-2027"
    assert train["propagateTags"] is True

    run = run_of(local_stack, upload, module)
    assert run.status == "submitted"
    assert [job.step for job in run.jobs] == ["prep", "train", "evaluate"]
    job_records = [table_of(local_stack).get_job(job.job_id) for job in run.jobs]
    assert all(record is not None and record.status == "SUBMITTED" for record in job_records)
    evaluate = job_records[2]
    assert evaluate is not None
    assert evaluate.depends_on == [jobs["train"]["jobId"]]
    assert evaluate.source.version_id == upload.version_id
    assert evaluate.spec_digest == run.spec_digest

    receipt = local_stack.receipt("receipts/vision/résumé runs/resnet pipeline.yaml.json")
    assert receipt["status"] == "submitted"
    assert receipt["schema"] == "batchdrop.receipt/v1"
    assert [(job["step"], job["queue"]) for job in receipt["jobs"]] == [
        ("prep", "cpu-shared"),
        ("train", "gpu-shared"),
        ("evaluate", "cpu-shared"),
    ]
    (event,) = local_stack.published_events()
    assert event["body"]["type"] == "run.submitted"
    assert event["body"]["schema"] == "batchdrop.event/v1"
    assert event["body"]["run_id"] == run.run_id
    assert event["attributes"] == {
        "team": "vision",
        "type": "run.submitted",
        "status": "submitted",
        "environment": "adhoc",
    }


@pytest.mark.parametrize(
    ("spec", "team", "queues", "array"),
    [
        ("cpu-report.yaml", "forecasting", ["cpu-shared"], None),
        ("gpu-finetune.yaml", "vision", ["gpu-shared"], None),
        ("triage-experiment.json", "forecasting", ["cpu-shared"], None),
        ("lr-grid-1000.yaml", "vision", ["gpu-shared"], 1000),
        ("vision-production.yaml", "vision", ["gpu-vision-prod", "cpu-shared"], None),
    ],
)
def test_every_example_is_submitted(  # noqa: PLR0917  # one argument per column of the table
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    spec: str,
    team: str,
    queues: list[str],
    array: int | None,
) -> None:
    module, submit = submit_function
    sent = capture_submissions(module)
    upload = local_stack.upload(f"incoming/{team}/{spec}", example(spec))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    assert [request["jobQueue"].rsplit("/", 1)[1] for request in sent] == queues
    assert sent[0].get("arrayProperties", {}).get("size") == array
    production = queues[0] == "gpu-vision-prod"
    assert ("shareIdentifier" in sent[0]) is not production, "only fair-share queues get a share identifier"
    assert run_of(local_stack, upload, module).status == "submitted"


def test_a_batch_of_records_with_a_bad_one_submits_the_good_and_rejects_the_bad(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    uploads = [
        local_stack.upload("incoming/vision/resnet-pipeline.yaml", example("resnet-pipeline.yaml")),
        local_stack.upload("incoming/forecasting/nightly/cpu-report.yaml", example("cpu-report.yaml")),
        local_stack.upload(
            "incoming/vision/typo in gpus.yaml",
            b"version: 1\nname: typo\njob_definition: trainer\nresources: {vcpus: 4, memory_mib: 8192, gpu: 1}\n",
        ),
    ]
    assert submit(local_stack.s3_event(*uploads, template="submit/sqs-batch.json")) == {"batchItemFailures": []}
    statuses = [run_of(local_stack, upload, module).status for upload in uploads]
    assert statuses == ["submitted", "submitted", "rejected"]
    receipt = local_stack.receipt("receipts/vision/typo in gpus.yaml.json")
    assert receipt["problems"][0]["path"] == "resources.gpu"
    assert receipt["problems"][0]["line"] == 4
    assert "did you mean `gpus`" in receipt["problems"][0]["message"]
    types = sorted(event["body"]["type"] for event in local_stack.published_events())
    assert types == ["run.rejected", "run.submitted", "run.submitted"]


def test_s3_test_event_is_acknowledged_and_does_nothing(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _, submit = submit_function
    event = load_event("submit/sqs-s3-test-event")
    assert submit(event) == {"batchItemFailures": []}
    assert local_stack.batch_jobs() == []
    assert local_stack.published_events() == []


def test_objects_outside_a_team_folder_are_rejected_not_run(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    """No team, no run: its uploader finds why at receipts/_no_team/<name>.json (see test_s3_edges.py)."""
    _, submit = submit_function
    upload = local_stack.upload("incoming/stray.yaml", example("cpu-report.yaml"))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    assert local_stack.batch_jobs() == []
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.rejected"]


# ---------------------------------------------------------------- at least once, and concurrently


def test_same_object_delivered_twice_is_one_run(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _module, submit = submit_function
    upload = local_stack.upload("incoming/vision/gpu-finetune.yaml", example("gpu-finetune.yaml"))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}  # S3 delivered it again
    assert len(local_stack.batch_jobs()) == 1
    assert len(local_stack.published_events()) == 1


def test_a_new_upload_of_the_same_key_is_a_new_run(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    first = local_stack.upload("incoming/vision/gpu-finetune.yaml", example("gpu-finetune.yaml"))
    second = local_stack.upload("incoming/vision/gpu-finetune.yaml", example("gpu-finetune.yaml"))
    submit(local_stack.s3_event(first))
    submit(local_stack.s3_event(second))
    assert len(local_stack.batch_jobs()) == 2
    assert run_of(local_stack, first, module).run_id != run_of(local_stack, second, module).run_id


def test_concurrent_deliveries_to_two_function_instances_submit_once(local_stack: LocalStack) -> None:
    function = local_stack.stack.functions["SubmitFunction"]
    instances = [load_handler(function) for _ in range(2)]  # two warm Lambda instances
    upload = local_stack.upload("incoming/vision/resnet-pipeline.yaml", example("resnet-pipeline.yaml"))
    events = [local_stack.s3_event(upload) for _ in instances]  # two SQS messages for one object
    barrier = threading.Barrier(len(instances))
    responses: list[Any] = []

    def deliver(module: ModuleType, event: dict[str, Any]) -> None:
        barrier.wait()
        responses.append(invoke(function, module, event))

    threads = [threading.Thread(target=deliver, args=pair) for pair in zip(instances, events, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert responses == [{"batchItemFailures": []}] * 2
    assert len(local_stack.batch_jobs()) == 3, "one pipeline's three jobs, not six"
    assert run_of(local_stack, upload, instances[0]).status == "submitted"


def test_one_message_delivered_to_two_function_instances_at_once_submits_once(local_stack: LocalStack) -> None:
    """SQS delivers at least once: the same message (one message id) may reach two instances together. The
    second finds its own message's claim young: it is handed back (or finds the run done), never submitted."""
    function = local_stack.stack.functions["SubmitFunction"]
    instances = [load_handler(function) for _ in range(2)]
    upload = local_stack.upload("incoming/vision/resnet-pipeline.yaml", example("resnet-pipeline.yaml"))
    event = local_stack.s3_event(upload)
    (message,) = event["Records"]
    barrier = threading.Barrier(len(instances))
    responses: list[Any] = []

    def deliver(module: ModuleType) -> None:
        barrier.wait()
        responses.append(invoke(function, module, event))

    threads = [threading.Thread(target=deliver, args=(module,)) for module in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {"batchItemFailures": []} in responses, "one instance submitted it"
    assert all(
        response["batchItemFailures"] in ([], [{"itemIdentifier": message["messageId"]}]) for response in responses
    ), "the other found it done, or handed its copy back to come again later"
    assert len(local_stack.batch_jobs()) == 3, "one pipeline's three jobs, not six"
    assert run_of(local_stack, upload, instances[0]).status == "submitted"


def test_a_batch_whose_records_fail_part_way_leaves_no_run_submitted_without_its_jobs_records(
    faults: FaultProxy, local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    """The runs' records are written after every item of their jobs: a BatchWriteItem that fails part way
    (the first call applied, the rest refused) leaves the claims `submitting`, and the redelivery writes them
    whole, adopting the jobs Batch has."""
    module, submit = submit_function
    uploads = [
        local_stack.upload(f"incoming/vision/part-{index}/resnet-pipeline.yaml", example("resnet-pipeline.yaml"))
        for index in range(4)
    ]
    event = local_stack.s3_event(*uploads)
    for nth in range(2, 60):  # the first BatchWriteItem goes through; then DynamoDB refuses them for a while
        faults.fail_before("dynamodb", "BatchWriteItem", nth=nth)

    assert len(submit(event)["batchItemFailures"]) == len(uploads), "every drop goes back to the queue"
    assert {run_of(local_stack, upload, module).status for upload in uploads} == {"submitting"}

    faults.clear_rules()
    as_if_redelivered(local_stack.client("dynamodb"), local_stack.table)
    assert submit(event) == {"batchItemFailures": []}
    table = table_of(local_stack)
    for upload in uploads:
        run = run_of(local_stack, upload, module)
        assert run.status == "submitted"
        assert set(table.get_jobs(job.job_id for job in run.jobs)) == {job.job_id for job in run.jobs}
    assert len(local_stack.batch_jobs()) == 3 * len(uploads), "every job adopted, none submitted twice"


def test_crash_between_submit_and_record_is_repaired_by_adopting_the_job(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, submit = submit_function
    upload = local_stack.upload("incoming/vision/resnet-pipeline.yaml", example("resnet-pipeline.yaml"))
    event = local_stack.s3_event(upload)
    table = module.submitter.table

    def crash(*args: Any, **kwargs: Any) -> None:
        raise ConnectionResetError("the function died after SubmitJob, before any record")

    with monkeypatch.context() as patch:
        patch.setattr(table, "write_new", crash)
        (message,) = event["Records"]
        # the drop is reported failed: SQS will deliver it again
        assert submit(event) == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert len(local_stack.batch_jobs()) == 3
    assert run_of(local_stack, upload, module).status == "submitting"
    assert local_stack.published_events() == []

    sent = capture_submissions(module)
    as_if_redelivered(local_stack.client("dynamodb"), local_stack.table)
    assert submit(event) == {"batchItemFailures": []}  # the same message, redelivered
    assert sent == [], "every job was adopted by name, none submitted again"
    assert len(local_stack.batch_jobs()) == 3
    run = run_of(local_stack, upload, module)
    assert run.status == "submitted"
    assert sorted(job.job_id for job in run.jobs) == sorted(job["jobId"] for job in local_stack.batch_jobs())
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.submitted"]


def test_a_run_whose_event_cannot_be_published_is_told_once_sns_is_back(
    faults: FaultProxy, local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _, submit = submit_function
    upload = local_stack.upload("incoming/vision/gpu-finetune.yaml", example("gpu-finetune.yaml"))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}, "recording is not held up by SNS"

    faults.fail_before("sns", "*", times=None)  # SNS down, through every retry botocore makes
    told = local_stack.tell()
    assert len(told["batchItemFailures"]) == 1, "the decided run is handed over again, not dropped"
    assert faults.count("sns", "PublishBatch") > 1, "botocore's own retries were tried beneath"

    faults.clear_rules()
    local_stack.tell()  # the stream hands the change over again (Lambda's retry from the failed record)
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.submitted"]
    assert local_stack.receipt("receipts/vision/gpu-finetune.yaml.json")["status"] == "submitted"


def test_uncertain_submit_outcome_is_settled_by_name_not_by_resubmitting(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, submit = submit_function
    gateway = module.submitter.batch
    monkeypatch.setattr(gateway, "sleep", lambda seconds: None)
    real_submit = gateway.client.submit_job

    def submit_then_lose_the_answer(**request: Any) -> Any:
        real_submit(**request)  # Batch made the job...
        raise aws_error("ServerException", "internal", 500)  # ...but we never heard

    monkeypatch.setattr(gateway.client, "submit_job", submit_then_lose_the_answer)
    upload = local_stack.upload("incoming/forecasting/cpu-report.yaml", example("cpu-report.yaml"))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    assert len(local_stack.batch_jobs()) == 1
    assert run_of(local_stack, upload, module).jobs[0].job_id == local_stack.batch_jobs()[0]["jobId"]


def test_throttled_submit_backs_off_and_gets_through(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, submit = submit_function
    gateway = module.submitter.batch
    waits: list[float] = []
    monkeypatch.setattr(gateway, "sleep", waits.append)
    real_submit = gateway.client.submit_job
    refusals = {"left": 5}

    def throttled(**request: Any) -> Any:
        if refusals["left"]:
            refusals["left"] -= 1
            raise aws_error("TooManyRequestsException", "Too Many Requests", 429)
        return real_submit(**request)

    monkeypatch.setattr(gateway.client, "submit_job", throttled)
    upload = local_stack.upload("incoming/vision/gpu-finetune.yaml", example("gpu-finetune.yaml"))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    assert len(waits) == 5
    assert all(0 <= wait <= gateway.base_delay * 2**attempt for attempt, wait in enumerate(waits))
    assert len(local_stack.batch_jobs()) == 1


def test_batch_that_stays_throttled_returns_the_record_to_the_queue_then_the_dead_letter_queue(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Played as Lambda's SQS poller does: receive, invoke, delete only what succeeded."""
    module, submit = submit_function
    gateway = module.submitter.batch
    monkeypatch.setattr(gateway, "sleep", lambda seconds: None)

    def always_throttled(**request: Any) -> Any:
        raise aws_error("TooManyRequestsException", "Too Many Requests", 429)

    monkeypatch.setattr(gateway.client, "submit_job", always_throttled)
    sqs = local_stack.client("sqs")
    intake = local_stack.stack.outputs["IntakeQueueUrl"]
    dead_letters = local_stack.stack.outputs["IntakeDeadLetterQueueUrl"]
    upload = local_stack.upload("incoming/vision/gpu-finetune.yaml", example("gpu-finetune.yaml"))
    sqs.purge_queue(QueueUrl=intake)  # moto's own notification of the upload lacks fields S3 sends (bridges.py)
    template = local_stack.s3_event(upload)["Records"][0]
    sqs.send_message(QueueUrl=intake, MessageBody=template["body"])
    receives = 0
    while True:
        received = sqs.receive_message(
            QueueUrl=intake, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            break
        receives += 1
        records = [
            {**template, "messageId": m["MessageId"], "body": m["Body"], "receiptHandle": m["ReceiptHandle"]}
            for m in received
        ]
        failed = {item["itemIdentifier"] for item in submit({"Records": records})["batchItemFailures"]}
        for message in received:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=intake, ReceiptHandle=message["ReceiptHandle"])
    assert receives == 5, "the redrive policy's maxReceiveCount"
    parked = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["versionId"] for m in parked] == [upload.version_id]
    assert local_stack.batch_jobs() == []


def test_batch_refusing_a_later_step_cancels_the_earlier_ones_and_rejects_the_run(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, submit = submit_function
    gateway = module.submitter.batch
    real_submit = gateway.client.submit_job
    cancelled: list[str] = []
    monkeypatch.setattr(gateway, "terminate", lambda job_id, reason: cancelled.append(job_id))

    def refuse_training(**request: Any) -> Any:
        if "-train-" in request["jobName"]:
            raise aws_error("ClientException", "Job queue is DISABLED", 400)
        return real_submit(**request)

    monkeypatch.setattr(gateway.client, "submit_job", refuse_training)
    upload = local_stack.upload("incoming/vision/resnet-pipeline.yaml", example("resnet-pipeline.yaml"))
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    prep = [job["jobId"] for job in local_stack.batch_jobs()]
    assert cancelled == prep
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected"
    assert run.problems[0].code == "refused_by_batch"
    assert "Job queue is DISABLED" in run.problems[0].message


# ---------------------------------------------------------------- bad input: refused, recorded, told


BAD_INPUTS = {
    "not-utf8": (b"version: 1\nname: caf\xe9\n", "not_utf8"),
    "not-yaml": (b"version: 1\nname: [oops\n", "yaml_syntax"),
    "too-large": (b"version: 1\n#" + b"x" * 300_000, "too_large"),
    "deeply-nested": (b"version: 1\nenv: " + b"[" * 40 + b"]" * 40 + b"\n", "too_deep"),
    "alias-bomb": (
        b"version: 1\na: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + b"".join(
            f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n".encode() for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "too_many_values",
    ),
    "wrong-types": (
        b"version: 1\nname: t\njob_definition: trainer\nresources: {vcpus: '8', memory_mib: 8}\n",
        "wrong_type",
    ),
    "unknown-field": (
        b"version: 1\nname: t\njob_definition: trainer\nresources: {vcpus: 1, memory_mib: 512}\ngpu: 1\n",
        "unknown_field",
    ),
    "unknown-job-definition": (
        b"version: 1\nname: t\njob_definition: triage\nresources: {vcpus: 1, memory_mib: 512}\n",
        "unknown_job_definition",
    ),
    "hardware-no-queue-has": (
        b"version: 1\nname: t\njob_definition: trainer\nresources: {vcpus: 8, memory_mib: 8192, gpus: 16}\n",
        "exceeds_queue",
    ),
}


@pytest.mark.parametrize(("content", "code"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_leaves_record_receipt_and_event_and_submits_nothing(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke], content: bytes, code: str
) -> None:
    module, submit = submit_function
    upload = local_stack.upload("incoming/vision/bad.yaml", content)
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}, "a bad file is not retried"
    assert local_stack.batch_jobs() == []
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected"
    assert code in [problem.code for problem in run.problems]
    receipt = local_stack.receipt("receipts/vision/bad.yaml.json")
    assert receipt["status"] == "rejected"
    assert code in [problem["code"] for problem in receipt["problems"]]
    (event,) = local_stack.published_events()
    assert event["body"]["type"] == "run.rejected"
    assert event["attributes"]["status"] == "rejected"
    assert event["body"]["problems"]


def test_unknown_team_is_rejected_with_a_receipt_in_its_folder(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    _module, submit = submit_function
    upload = local_stack.upload(
        "incoming/robotics/arm.yaml", example("cpu-report.yaml").replace(b"team: forecasting\n", b"")
    )
    submit(local_stack.s3_event(upload))
    receipt = local_stack.receipt("receipts/robotics/arm.yaml.json")
    assert receipt["problems"][0]["code"] == "unknown_team"


def test_a_spec_claiming_another_team_is_refused(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    upload = local_stack.upload("incoming/vision/borrowed.yaml", example("cpu-report.yaml"))  # says forecasting
    submit(local_stack.s3_event(upload))
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected"
    assert {problem.code for problem in run.problems} >= {"wrong_team"}
    assert local_stack.batch_jobs() == []
