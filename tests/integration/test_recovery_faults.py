"""A recovery is submitted exactly once, under faults injected beneath botocore (tests/faults.py): the
submit function's second event source (the records table's stream, filtered as template.yaml says) hands
it the failed job tracking marked, its SubmitJob is applied and answered 500, and the stream batch fails
after it; the redelivered record adopts the job by its name."""

from __future__ import annotations

import pytest
from batchdrop_local.streams import StreamReader, matches

from batchdrop.platform.recovery import decide
from batchdrop.store.items import job_key, serialize
from batchdrop.store.records import JobRecord
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import UnsleptSubmit
from tests.integration.test_submit import run_of, table_of
from tests.recordkit import pipeline_spec

pytestmark = pytest.mark.integration

KEY = "incoming/vision/rec-faults.yaml"
SPEC = pipeline_spec("rec-faults", ["prep", "report"], prep={"retries": "{out_of_memory: {times: 2, grow: 2.0}}"})


def failed_with_recovery(stack: LocalStack, job: JobRecord) -> JobRecord:
    """What tracking writes when the job runs out of memory: FAILED, and the recovery it decided."""
    decision = decide(
        job.recovery_policy,
        failure_class="out_of_memory",
        memory_mib=job.resources.memory_mib,
        queue=job.queue,
        queue_arn=job.queue_arn,
        counts=job.recovery_counts,
        reclaims=0,
    )
    assert decision.due is not None
    stack.client("dynamodb").update_item(
        TableName=stack.table,
        Key=job_key(job.job_id),
        UpdateExpression="SET #status = :failed, failure_class = :oom, recovery = :due REMOVE GSI1PK, GSI1SK",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=serialize(
            {":failed": "FAILED", ":oom": "out_of_memory", ":due": decision.due.model_dump(mode="json")}
        ),
    )
    return job.model_copy(update={"status": "FAILED", "recovery": decision.due})


def test_a_recovery_whose_submit_is_applied_then_lost_and_whose_batch_fails_is_made_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, _ = unslept_submit
    upload = local_stack.upload(KEY, SPEC)
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    run = run_of(local_stack, upload, module)
    prep_ref, report_ref = run.jobs
    prep = table_of(local_stack).get_job(prep_ref.job_id)
    assert prep is not None
    failed_with_recovery(local_stack, prep)

    source = local_stack.stack.functions["SubmitFunction"].events["Recoveries"]["Properties"]
    reader = StreamReader(local_stack.aws, source["Stream"])
    handed = [record for record in reader.read() if matches(record, source["FilterCriteria"]["Filters"])]
    assert len(handed) == 1, "of every change so far, only the job that just gained `recovery` is handed over"
    new_name = f"rec-faults-prep-{run.run_id}-r1"
    faults.clear()
    lost = faults.fail_after("batch", "SubmitJob", body_contains=new_name)  # Batch makes the job; the answer is lost
    broken = faults.fail_before("dynamodb", "UpdateItem", times=None)  # then the run cannot be rewired

    response = submit({"Records": handed})

    assert response == {"batchItemFailures": [{"itemIdentifier": handed[0]["dynamodb"]["SequenceNumber"]}]}
    assert (lost.fired, broken.fired >= 1) == (1, True)
    faults.clear_rules()

    assert submit({"Records": handed}) == {"batchItemFailures": []}, "the stream hands the record over again"
    assert submit({"Records": handed}) == {"batchItemFailures": []}, "and once more: nothing left to do"

    assert faults.count("batch", "SubmitJob") == 2, "one SubmitJob for prep's new job, one for report's"
    created = [job for job in local_stack.batch_jobs() if job["jobName"] == new_name]
    assert len(created) == 1, "exactly one Batch job for the recovery"
    after = table_of(local_stack).get_run(run.run_id)
    assert after is not None
    assert after.jobs[0].job_id == created[0]["jobId"], "the run names the new job"
    new_prep = table_of(local_stack).get_job(created[0]["jobId"])
    assert new_prep is not None
    assert (new_prep.recovers, new_prep.resources.memory_mib) == (prep.job_id, 8192)
    assert new_prep.recovery_story == ["ran out of memory with 4 GiB; retrying with 8 GiB (1 of 2)"]
    new_report = table_of(local_stack).get_job(after.jobs[1].job_id)
    assert new_report is not None
    assert (new_report.recovers, new_report.depends_on) == (report_ref.job_id, [new_prep.job_id])
    old = table_of(local_stack).get_job(prep.job_id)
    assert old is not None
    assert old.recovered_by == new_prep.job_id
