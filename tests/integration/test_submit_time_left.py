"""A batch of drops that would outlast the invocation: the submit function stops starting drops when
too little of it is left, writes what it did, and hands the rest back to SQS unhandled, instead of
being stopped by Lambda's timeout mid-way with none of the batch's records written."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from batchdrop_local.sandbox import FakeLambdaContext

from batchdrop.store.records import SpecSource
from tests.integration.conftest import LocalStack, Uploaded
from tests.integration.test_submit import Invoke, example, run_of, table_of

DROPS = (  # the folder is the team
    ("incoming/forecasting/a/cpu-report.yaml", "cpu-report.yaml"),
    ("incoming/vision/b/gpu-finetune.yaml", "gpu-finetune.yaml"),
    ("incoming/forecasting/c/cpu-report.yaml", "cpu-report.yaml"),
)


@dataclass(frozen=True)
class RunningOut(FakeLambdaContext):
    """An invocation whose time left is, at each look, the next of `left_ms` (the last for good)."""

    left_ms: list[int] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms.pop(0) if len(self.left_ms) > 1 else self.left_ms[0]


def run_id(module: ModuleType, upload: Uploaded) -> str:
    source = SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id, etag=upload.etag)
    return str(module.Submitter.run_id(source))


def test_drops_there_is_no_time_left_for_go_back_unhandled_and_their_retry_submits_them(
    local_stack: LocalStack, submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    uploads = [local_stack.upload(key, example(name)) for key, name in DROPS]
    event = local_stack.s3_event(*uploads)
    messages = [record["messageId"] for record in event["Records"]]

    response = module.lambda_handler(event, RunningOut(function_name="SubmitFunction", left_ms=[110_000, 20_000]))

    assert response == {"batchItemFailures": [{"itemIdentifier": message} for message in messages[1:]]}
    assert run_of(local_stack, uploads[0], module).status == "submitted", "the first drop's records are written"
    assert len(local_stack.batch_jobs()) == 1, "the others were not started"
    assert [table_of(local_stack).get_run(run_id(module, upload)) for upload in uploads[1:]] == [None, None]

    retried = {"Records": [record for record in event["Records"] if record["messageId"] in messages[1:]]}
    assert submit(retried) == {"batchItemFailures": []}
    assert [run_of(local_stack, upload, module).status for upload in uploads] == ["submitted"] * 3
