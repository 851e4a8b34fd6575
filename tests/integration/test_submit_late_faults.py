"""A SubmitJob the client timed out on but Batch applies late, after the gateway's look-up by name.

The burst benchmark once made two Batch jobs of one name (bench/burst.py, own share, 1 in 240): on a
loaded machine a SubmitJob took longer than the Batch client's read timeout, the gateway looked the
name up (ListJobs) while Batch was still making the job, found nothing and sent it again; the first
was then applied too. A time-out is the one uncertain outcome a look-up cannot settle at once: the
call may still be on its way. Here the fault proxy (tests/faults.py) plays it beneath botocore: the
first SubmitJob is held past the client's read timeout, then forwarded (applied late).
"""

from __future__ import annotations

import time

from botocore.config import Config

from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import UnsleptSubmit, as_if_redelivered
from tests.integration.test_submit import example, run_of

ONE_STEP = ("incoming/forecasting/cpu-report.yaml", "cpu-report.yaml")
READ_TIMEOUT = 1
"""The Batch client's read timeout in these tests (the function's is 30 s): the held SubmitJob outlasts it."""


def _applied_late(faults: FaultProxy) -> None:
    """Wait until the held SubmitJob has been forwarded and answered by Batch (applied)."""
    for _ in range(200):
        if any(seen.fault == "delay" and seen.status is not None for seen in faults.requests):
            return
        time.sleep(0.05)
    raise AssertionError("the held SubmitJob was never applied")


def test_a_submit_that_times_out_and_is_applied_after_the_look_up_makes_one_job(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, _ = unslept_submit
    gateway = module.submitter.batch
    gateway.client = faults.client("batch", BATCH_CLIENT_CONFIG.merge(Config(read_timeout=READ_TIMEOUT)))
    faults.delay("batch", "SubmitJob", seconds=READ_TIMEOUT + 2)  # timed out, looked up, then applied
    key, name = ONE_STEP
    upload = local_stack.upload(key, example(name))
    event = local_stack.s3_event(upload)

    first = submit(event)

    assert len(first["batchItemFailures"]) == 1, "a job not listed after a time-out is not sent again now"
    _applied_late(faults)
    assert faults.operations("batch") == ["ListJobs", "SubmitJob"], (
        "looked up while the SubmitJob was held (the proxy records a call when it is answered), not sent again"
    )
    as_if_redelivered(local_stack.client("dynamodb"), local_stack.table)
    assert submit(event) == {"batchItemFailures": []}, "the drop retried (SQS redelivers it) adopts the job"
    assert faults.count("batch", "SubmitJob") == 1, "SubmitJob went out once"

    jobs = local_stack.batch_jobs()
    assert len(jobs) == 1, f"one Batch job for the drop, not {[job['jobName'] for job in jobs]}"
    run = run_of(local_stack, upload, module)
    assert run.status == "submitted"
    assert run.jobs[0].job_id == jobs[0]["jobId"], "the job applied late was adopted"
