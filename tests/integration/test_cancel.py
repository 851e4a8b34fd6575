"""`cancel` against Batch as it is, not as the records last saw it.

Records trail Batch by an event's journey: a job recorded SUBMITTED or RUNNABLE may
already be running. moto's Batch (without Docker) has run every job by the time
SubmitJob returns, which is exactly that case: a cancel that trusted the records
and used CancelJob would be ignored by Batch, and the jobs would run on.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from batchdrop.gateways.batch import BatchGateway
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import SpecSource
from batchdrop_cli.cancelling import RunCanceller
from batchdrop_cli.run_views import RunReader
from tests.conftest import EXAMPLES
from tests.integration.conftest import LocalStack


def test_cancel_stops_jobs_that_started_since_their_records_were_written(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Callable[[dict[str, Any]], Any]]
) -> None:
    module, submit = submit_function
    upload = local_stack.upload(
        "incoming/vision/resnet-pipeline.yaml", (EXAMPLES / "specs" / "resnet-pipeline.yaml").read_bytes()
    )
    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}
    run_id = module.Submitter.run_id(SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id))
    table = RecordQueries(local_stack.client("dynamodb"), local_stack.table)
    batch = BatchGateway(local_stack.client("batch"))
    canceller = RunCanceller(runs=RunReader(table=table, batch=batch), table=table, batch=batch)
    requests = canceller.cancel(run_id, who="arn:aws:iam::123456789012:user/ana", reason="wrong data")
    assert {(request.step, request.status, request.action) for request in requests} == {
        ("prep", "SUBMITTED", "cancelled"),
        ("train", "SUBMITTED", "cancelled"),
        ("evaluate", "SUBMITTED", "cancelled"),
    }
    described = local_stack.client("batch").describe_jobs(jobs=[request.job_id for request in requests])["jobs"]
    assert {job["jobId"]: job.get("statusReason") for job in described} == {
        request.job_id: "cancelled by arn:aws:iam::123456789012:user/ana with batchdrop: wrong data"
        for request in requests
    }, "Batch was asked to stop every job, whatever the records said"
    run = table.get_run(run_id)
    assert run is not None
    assert (run.cancelled_by, run.cancel_reason) == ("arn:aws:iam::123456789012:user/ana", "wrong data")
