"""SubmitJob is sent once: the submit path under faults injected beneath botocore (tests/faults.py).

A test that replaces `client.submit_job` sits above botocore's retry layer and
cannot see what botocore re-sends by itself; these go through the fault proxy,
so every SubmitJob that reaches the wire is counted, botocore's retries included.
SubmitJob has no idempotency token: only the gateway may decide to send it again,
after looking the job's deterministic name up (issue 11, defect 1).
"""

from __future__ import annotations

import pytest

from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import UnsleptSubmit
from tests.integration.test_submit import example, run_of

PIPELINE = ("incoming/vision/resnet-pipeline.yaml", "resnet-pipeline.yaml")  # prep, train (an array), evaluate
ONE_STEP = ("incoming/forecasting/cpu-report.yaml", "cpu-report.yaml")


def test_a_submit_applied_then_answered_500_makes_one_job_per_step(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, _ = unslept_submit
    rule = faults.fail_after("batch", "SubmitJob", times=None)  # every step: Batch makes the job, the answer is lost
    key, name = PIPELINE
    upload = local_stack.upload(key, example(name))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    jobs = local_stack.batch_jobs()
    assert faults.count("batch", "SubmitJob") == 3, "one SubmitJob per step: nothing re-sent beneath the gateway"
    assert rule.fired == 3
    assert len(jobs) == 3, "one Batch job per step"
    assert faults.operations("batch") == ["SubmitJob", "ListJobs"] * 3, "each uncertain submit settled by name"
    run = run_of(local_stack, upload, module)
    assert run.status == "submitted"
    assert [job.step for job in run.jobs] == ["prep", "train", "evaluate"]
    assert sorted(job.job_id for job in run.jobs) == sorted(job["jobId"] for job in jobs), "the jobs were adopted"


def test_a_submit_that_stays_throttled_is_sent_the_gateways_max_attempts_and_no_more(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, waits = unslept_submit
    gateway = module.submitter.batch
    faults.throttle("batch", "SubmitJob", times=20)
    key, name = ONE_STEP
    upload = local_stack.upload(key, example(name))

    response = submit(local_stack.s3_event(upload))

    assert len(response["batchItemFailures"]) == 1, "the drop goes back to the queue for a later try"
    assert faults.count("batch", "SubmitJob") == gateway.max_attempts, "each attempt the gateway's, none botocore's"
    assert faults.count("batch", "SubmitJob", fault="throttle") == gateway.max_attempts
    assert len(waits) == gateway.max_attempts, "the gateway saw (and backed off from) every throttle"
    assert local_stack.batch_jobs() == []


def test_twenty_throttles_then_acceptance_are_twenty_one_requests_each_seen_by_the_gateway(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, submit, waits = unslept_submit
    monkeypatch.setattr(module.submitter.batch, "max_attempts", 21)
    faults.throttle("batch", "SubmitJob", times=20)
    key, name = ONE_STEP
    upload = local_stack.upload(key, example(name))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    assert faults.count("batch", "SubmitJob") == 21
    assert len(waits) == 20, "every throttle reached the gateway, which alone decides to try again"
    (job,) = local_stack.batch_jobs()
    assert run_of(local_stack, upload, module).jobs[0].job_id == job["jobId"]


def test_a_submit_refused_with_500_before_applying_is_looked_up_then_sent_again_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, _ = unslept_submit
    faults.fail_before("batch", "SubmitJob")
    key, name = ONE_STEP
    upload = local_stack.upload(key, example(name))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    assert faults.operations("batch") == ["SubmitJob", "ListJobs", "SubmitJob"], "the gateway looked before resending"
    (job,) = local_stack.batch_jobs()
    run = run_of(local_stack, upload, module)
    assert run.status == "submitted"
    assert run.jobs[0].job_id == job["jobId"]


def test_a_submit_whose_connection_drops_after_applying_makes_one_job(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, _ = unslept_submit
    faults.drop("batch", "SubmitJob")
    key, name = ONE_STEP
    upload = local_stack.upload(key, example(name))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    assert faults.operations("batch") == ["SubmitJob", "ListJobs"], "the dropped submit was settled by name"
    (job,) = local_stack.batch_jobs()
    run = run_of(local_stack, upload, module)
    assert run.status == "submitted"
    assert run.jobs[0].job_id == job["jobId"]
