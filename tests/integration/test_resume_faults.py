"""A resumed run's submissions are made exactly once, under faults injected beneath botocore
(tests/faults.py): its SubmitJob applied and then answered 500 or cut off, refused before it was applied, or
throttled. Each step it submits is one Batch job; the steps it reuses are never submitted again, and its run
record and receipt name them as reused (docs/resume.md)."""

from __future__ import annotations

from types import ModuleType

import pytest

from batchdrop.store.items import job_key, run_key, serialize
from batchdrop.store.records import RunRecord
from tests.faults import FaultKind, FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import Invoke, UnsleptSubmit, as_if_redelivered
from tests.integration.test_submit import run_of
from tests.recordkit import pipeline_spec

pytestmark = pytest.mark.integration

KEY = "incoming/vision/res-faults.yaml"
SPEC = pipeline_spec("res-faults")


def ended(stack: LocalStack, run: RunRecord, statuses: dict[str, str]) -> None:
    """What tracking leaves when the run ends: each step's job in its final state, and the run failed."""
    dynamodb = stack.client("dynamodb")
    for ref in run.jobs:
        dynamodb.update_item(
            TableName=stack.table,
            Key=job_key(ref.job_id),
            UpdateExpression="SET #status = :status REMOVE GSI1PK, GSI1SK",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize({":status": statuses[ref.step]}),
        )
    dynamodb.update_item(
        TableName=stack.table,
        Key=run_key(run.run_id),
        UpdateExpression="SET #status = :failed",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=serialize({":failed": "failed"}),
    )


def failed_first_run(stack: LocalStack, function: tuple[ModuleType, Invoke]) -> RunRecord:
    """The first run: prep succeeded, train failed, evaluate never ran (cancelled with it)."""
    module, submit = function
    upload = stack.upload(KEY, SPEC)
    assert submit(stack.s3_event(upload)) == {"batchItemFailures": []}
    first = run_of(stack, upload, module)
    ended(stack, first, {"prep": "SUCCEEDED", "train": "FAILED", "evaluate": "CANCELLED"})
    return first


def batch_jobs_of(stack: LocalStack, run_id: str) -> list[str]:
    """The steps of the Batch jobs named for the run (job names carry its run id), one entry per job."""
    return sorted(job["jobName"].split("-")[2] for job in stack.batch_jobs() if run_id in job["jobName"])


@pytest.mark.parametrize(
    "fault",
    [
        ("fail_after", ["SubmitJob", "ListJobs"] * 2),  # applied, answered 500: settled by name
        ("drop", ["SubmitJob", "ListJobs"] * 2),  # applied, the connection cut: settled by name
        ("fail_before", ["SubmitJob", "ListJobs", "SubmitJob"] * 2),  # not applied: looked up, then sent again
        ("throttle", ["SubmitJob", "SubmitJob"] * 2),  # not applied: the gateway backs off and sends it again
    ],
)
def test_a_resumed_runs_submit_under_a_fault_makes_each_rerun_step_once_and_reuses_the_rest(
    fault: tuple[FaultKind, list[str]],
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    kind, operations = fault
    module, submit, _ = unslept_submit
    first = failed_first_run(local_stack, (module, submit))
    earlier = {ref.step: ref.job_id for ref in first.jobs}
    faults.clear()
    for step in ("train", "evaluate"):  # each submission of the resumed run meets the fault once
        faults.add("batch", "SubmitJob", kind, body_contains=f"res-faults-{step}-")

    resumed = local_stack.upload(KEY, SPEC + f"resume: {first.run_id}\n".encode())
    assert submit(local_stack.s3_event(resumed)) == {"batchItemFailures": []}

    assert faults.operations("batch") == operations
    assert faults.count("batch", "SubmitJob", fault=kind) == 2
    run = run_of(local_stack, resumed, module)
    assert (run.status, run.resumes) == ("submitted", first.run_id)
    assert batch_jobs_of(local_stack, run.run_id) == ["evaluate", "train"], (
        "one Batch job per rerun step, none for prep"
    )
    assert batch_jobs_of(local_stack, first.run_id) == ["evaluate", "prep", "train"], "the first run's, as they were"
    jobs = {ref.step: ref for ref in run.jobs}
    assert (jobs["prep"].job_id, jobs["prep"].reused_from) == (earlier["prep"], first.run_id)
    made = {
        job["jobName"].split("-")[2]: job["jobId"] for job in local_stack.batch_jobs() if run.run_id in job["jobName"]
    }
    assert {step: jobs[step].job_id for step in ("train", "evaluate")} == made, "the run names the jobs Batch made"
    assert (jobs["train"].reused_from, jobs["evaluate"].reused_from) == (None, None)
    receipt = local_stack.receipt(f"receipts/vision/{KEY.removeprefix('incoming/vision/')}.json")
    assert receipt["run_id"] == run.run_id
    shown = {job["step"]: job.get("reused_from") for job in receipt["jobs"]}
    assert shown == {"prep": first.run_id, "train": None, "evaluate": None}


def test_a_resumed_drop_whose_records_fail_after_an_uncertain_submit_is_redelivered_and_adopts_its_jobs(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, _ = unslept_submit
    first = failed_first_run(local_stack, (module, submit))
    faults.clear()
    lost = faults.fail_after("batch", "SubmitJob", body_contains="res-faults-train-")  # made; the answer lost
    broken = [  # then the run's records cannot be written
        *(
            faults.fail_before("dynamodb", operation, times=None)
            for operation in ("BatchWriteItem", "TransactWriteItems")
        ),
        faults.fail_before("dynamodb", "PutItem", times=None, body_contains='"submitted"'),
    ]
    resumed = local_stack.upload(KEY, SPEC + f"resume: {first.run_id}\n".encode())
    event = local_stack.s3_event(resumed)

    assert len(submit(event)["batchItemFailures"]) == 1, "the drop goes back to the queue"
    assert (lost.fired, sum(rule.fired for rule in broken) >= 1) == (1, True)
    faults.clear_rules()
    as_if_redelivered(local_stack.client("dynamodb"), local_stack.table)
    assert submit(event) == {"batchItemFailures": []}, "the queue hands it over again"

    run = run_of(local_stack, resumed, module)
    assert (run.status, run.resumes) == ("submitted", first.run_id)
    assert batch_jobs_of(local_stack, run.run_id) == ["evaluate", "train"], "the redelivery adopted both by name"
    assert faults.count("batch", "SubmitJob") == 2, "nothing submitted twice, prep never"
    made = {
        job["jobName"].split("-")[2]: job["jobId"] for job in local_stack.batch_jobs() if run.run_id in job["jobName"]
    }
    jobs = {ref.step: ref for ref in run.jobs}
    assert {step: jobs[step].job_id for step in made} == made
    assert jobs["prep"].reused_from == first.run_id
