"""The track path under faults injected beneath botocore (tests/faults.py): recorded once, told once.

The track function writes each job's new state with one conditional UpdateItem
(and the statuses it passed through, in the same write); the publish function
tells that change from the table's stream. These tests break DynamoDB and SNS
below botocore's retry layer, so what botocore re-sends by itself is part of
what is tested (issue 11):

- a state update applied, then answered 500: botocore's copy fails its
  condition and looks stale, yet the job is in its new state and the change is
  told, once (defect 2: before the outbox, nothing was told);
- SNS down while the change is told: the change is handed over again, and told
  once SNS is back; SNS applying and then failing makes a copy with the same
  `event_id`, which consumers drop;
- DynamoDB throttling or slow: the right final state, each status told once;
- a run Batch refuses half-way: the job it had already taken is cancelled and
  recorded finished, so Batch's event of it is settled, not retried into the
  tracking queue's dead-letter queue (defect 8).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import as_batch_shows_it, in_sqs, state_change
from botocore.retries.standard import ExponentialBackoff

from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.test_submit import example, run_of
from tests.integration.test_track import Submitted, at, lifecycle, submit_spec, table_of

Invoke = Callable[[dict[str, Any]], Any]


@pytest.fixture
def track_function(local_stack: LocalStack) -> Invoke:
    """The track function, freshly imported (its clients through the proxy when `faults` came first)."""
    function = local_stack.stack.functions["TrackFunction"]
    module = load_handler(function)
    return lambda event: invoke(function, module, event)


@pytest.fixture
def instant_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry back-off, computed (and recorded) but not slept: a throttle waits a second or more."""
    delays: list[float] = []
    real = ExponentialBackoff.delay_amount

    def record(self: ExponentialBackoff, context: Any) -> float:
        delays.append(real(self, context))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", record)
    return delays


def job_status_events(stack: LocalStack) -> list[dict[str, Any]]:
    """The `job.status` events the topic delivered since the last look (the stream told first)."""
    return [event["body"] for event in stack.published_events() if event["body"]["type"] == "job.status"]


def told(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How often each (job, status) was told, counting an event once per `event_id` (as consumers do)."""
    distinct = {event["event_id"]: event for event in events}
    return Counter((event["job_id"], event["status"]) for event in distinct.values())


def submitted_finetune(stack: LocalStack, submit_function: tuple[ModuleType, Invoke]) -> Submitted:
    """gpu-finetune.yaml, submitted with no fault; it asks to hear of running, succeeded and failed."""
    module, submit = submit_function
    submitted = submit_spec(stack, submit, module, "gpu-finetune.yaml", "vision")
    assert [event["body"]["type"] for event in stack.published_events()] == ["run.submitted"]
    return submitted


# ---------------------------------------------------------------- DynamoDB applies, then answers 500


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_a_state_update_applied_then_answered_500_is_recorded_and_told_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
    status: str,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    job_id = submitted.jobs["main"].job_id
    event = next(e for e in lifecycle(submitted.batch["main"]) if e["detail"]["status"] == status)
    # The first UpdateItem of this job is its state update: DynamoDB applies it, the answer is a 500.
    rule = faults.fail_after("dynamodb", "UpdateItem", body_contains=job_id)

    assert track_function(in_sqs(event)) == {"batchItemFailures": []}, "botocore's copy fails its condition: settled"

    assert rule.fired == 1
    assert faults.count("dynamodb", "UpdateItem", fault=None) >= 1, "botocore re-sent the update beneath the tracker"
    record = table_of(local_stack).get_job(job_id)
    assert record is not None
    assert record.status == status, "the applied update stands"
    assert told(job_status_events(local_stack)) == {(job_id, status.lower()): 1}, "told once, from the stream"


def test_a_job_that_ended_on_an_update_answered_500_still_ends_its_run(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    faults.fail_after("dynamodb", "UpdateItem", body_contains=submitted.jobs["main"].job_id)

    assert track_function(in_sqs(lifecycle(submitted.batch["main"])[-1])) == {"batchItemFailures": []}

    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "succeeded"


def test_a_job_started_on_an_update_answered_500_still_starts_its_run(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    faults.fail_after("dynamodb", "UpdateItem", body_contains=submitted.jobs["main"].job_id)
    running = state_change(submitted.batch["main"], "RUNNING", at=at(4))

    assert track_function(in_sqs(running)) == {"batchItemFailures": []}

    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "running", "the run follows its job, as it does without the fault"


# ---------------------------------------------------------------- SNS down, or applying twice, while telling


def test_a_change_told_while_sns_is_down_is_handed_over_again_and_told_once_sns_is_back(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    job_id = submitted.jobs["main"].job_id
    running = state_change(submitted.batch["main"], "RUNNING", at=at(4))
    assert track_function(in_sqs(running)) == {"batchItemFailures": []}, "recording is not held up by SNS"

    faults.fail_before("sns", "*", times=None)  # SNS down, through every retry botocore makes
    assert len(local_stack.tell()["batchItemFailures"]) == 1, "the change is reported failed, not dropped"
    assert faults.count("sns", "PublishBatch") > 1, "botocore's own retries were tried beneath"
    assert faults.count("sns", "Publish") > 1, "and the publisher's one-by-one retry"
    assert len(local_stack.tell()["batchItemFailures"]) == 1, "handed over again, failed again: still not lost"

    faults.clear_rules()
    events = job_status_events(local_stack)  # the stream hands the change over once more

    assert [(event["job_id"], event["status"]) for event in events] == [(job_id, "running")]


def test_sns_applying_a_batch_then_answering_500_duplicates_events_under_one_event_id(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    job_id = submitted.jobs["main"].job_id
    assert track_function(in_sqs(*lifecycle(submitted.batch["main"]))) == {"batchItemFailures": []}
    rule = faults.fail_after("sns", "PublishBatch")  # delivered to the topic, then a 500: botocore re-sends

    assert local_stack.tell() == {"batchItemFailures": []}
    events = job_status_events(local_stack)

    assert rule.fired == 1
    assert told(events) == {(job_id, "running"): 1, (job_id, "succeeded"): 1}, "after dropping duplicates by id"
    copies = Counter(event["event_id"] for event in events)
    assert set(copies.values()) <= {1, 2}, "a copy per re-sent request at most"
    assert len(events) == 4, "both events went out twice: the first batch was delivered, then re-sent"


# ---------------------------------------------------------------- DynamoDB throttled, or slow


def test_a_throttled_table_ends_in_the_right_state_and_tells_each_status_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
    instant_backoff: list[float],
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    job_id = submitted.jobs["main"].job_id
    throttles = [
        faults.throttle("dynamodb", "UpdateItem", times=3),
        faults.throttle("dynamodb", "BatchWriteItem", times=2),
        faults.throttle("dynamodb", "BatchGetItem", times=2),
    ]

    for event in lifecycle(submitted.batch["main"]):
        assert track_function(in_sqs(event)) == {"batchItemFailures": []}, "botocore's retries absorb the throttles"

    assert [rule.fired for rule in throttles] == [3, 2, 2]
    assert len(instant_backoff) >= 7, "each throttle was backed off from beneath the tracker"
    record = table_of(local_stack).get_job(job_id, with_history=True)
    assert record is not None
    assert record.status == "SUCCEEDED"
    assert [t.status for t in record.ordered_history()] == [
        "SUBMITTED",
        "PENDING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert told(job_status_events(local_stack)) == {(job_id, "running"): 1, (job_id, "succeeded"): 1}
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "succeeded"


def test_a_slow_table_ends_in_the_right_state_and_tells_each_status_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    job_id = submitted.jobs["main"].job_id
    faults.clear()  # count from here
    slow = faults.delay("dynamodb", "*", seconds=0.3, times=None)  # every call; far below the 20 s read timeout
    pending, runnable, starting, running, succeeded = lifecycle(submitted.batch["main"])

    assert track_function(in_sqs(running, pending)) == {"batchItemFailures": []}
    assert track_function(in_sqs(succeeded, runnable, starting)) == {"batchItemFailures": []}

    assert slow.fired == faults.count("dynamodb") >= 4, "every call was slow"
    answered = [seen for seen in faults.requests if seen.service == "dynamodb"]
    assert all(seen.status is not None for seen in answered), "none timed out: every call was answered"
    refused = [seen.operation for seen in answered if seen.status != 200]
    assert set(refused) <= {"UpdateItem"}, "only a budget marker not yet due (a condition found false) is refused"
    record = table_of(local_stack).get_job(job_id)
    assert record is not None
    assert record.status == "SUCCEEDED"
    assert told(job_status_events(local_stack)) == {(job_id, "running"): 1, (job_id, "succeeded"): 1}


# ---------------------------------------------------------------- a run Batch refuses half-way (defect 8)


def test_a_job_cancelled_because_batch_refused_its_run_settles_batchs_failed_event(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, submit = submit_function
    monkeypatch.setattr(module.submitter.batch, "sleep", lambda seconds: None)
    # Batch takes `prep`, then refuses `train` for good (a 4xx: retrying the same request cannot help).
    refusal = faults.fail_before("batch", "SubmitJob", nth=2, status=400, code="ClientException")
    upload = local_stack.upload("incoming/vision/resnet-pipeline.yaml", example("resnet-pipeline.yaml"))

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}, "a refusal is an answer, not a retry"

    assert refusal.fired == 1
    assert faults.operations("batch") == ["SubmitJob", "SubmitJob", "TerminateJob"], "prep taken, train refused"
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected"
    assert run.problems[0].code == "refused_by_batch"
    (prep_ref,) = run.jobs
    prep = table_of(local_stack).get_job(prep_ref.job_id)
    assert prep is not None
    assert (prep.step, prep.status, prep.failure_class) == ("prep", "FAILED", "cancelled")
    (batch_job,) = local_stack.batch_jobs()
    assert batch_job["jobId"] == prep.job_id, "one Batch job: the one that was stopped"

    # Batch tells of the job it stopped.
    shown = as_batch_shows_it(batch_job, prep.resources.model_dump())
    stopped = state_change(shown, "FAILED", at=at(1), reason=f"batchdrop: run {run.run_id} was refused by Batch")
    assert track_function(in_sqs(stopped)) == {"batchItemFailures": []}, "settled, not retried into the DLQ"

    prep = table_of(local_stack).get_job(prep_ref.job_id)
    assert prep is not None
    assert (prep.status, prep.failure_class) == ("FAILED", "cancelled")
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected", "the run stays rejected"
    events = [event["body"] for event in local_stack.published_events()]
    assert [(event["type"], event["run_id"]) for event in events] == [("run.rejected", run.run_id)]


# ---------------------------------------------------------------- array children


def test_array_children_counted_once_when_the_count_update_is_applied_then_answered_500(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    module, submit = submit_function
    submitted = submit_spec(local_stack, submit, module, "lr-grid-1000.yaml", "vision")
    parent = submitted.batch["main"]
    running = [
        state_change(
            {**parent, "jobId": f"{parent['jobId']}:{index}", "arrayProperties": {"index": index}}, "RUNNING", at=at(5)
        )
        for index in range(10)
    ]
    counts = faults.fail_after("dynamodb", "UpdateItem", body_contains="children_version")

    assert track_function(in_sqs(*running)) == {"batchItemFailures": []}

    assert counts.fired == 1
    record = table_of(local_stack).get_job(parent["jobId"])
    assert record is not None
    assert record.children == {"RUNNING": 10}, "botocore's copy of the ADD changed nothing"


def test_array_children_counted_when_the_count_update_fails_and_the_batch_comes_back(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    module, submit = submit_function
    submitted = submit_spec(local_stack, submit, module, "lr-grid-1000.yaml", "vision")
    parent = submitted.batch["main"]
    batch = in_sqs(
        *[
            state_change(
                {**parent, "jobId": f"{parent['jobId']}:{index}", "arrayProperties": {"index": index}},
                "RUNNING",
                at=at(5),
            )
            for index in range(10)
        ]
    )
    faults.fail_before("dynamodb", "UpdateItem", body_contains="children_version", times=6)  # all of botocore's

    failed = track_function(batch)["batchItemFailures"]
    assert len(failed) == 10, "the batch comes back"
    assert track_function(batch) == {"batchItemFailures": []}, "the redelivery"

    record = table_of(local_stack).get_job(parent["jobId"])
    assert record is not None
    assert record.children == {"RUNNING": 10}, "the children merged by the first delivery are counted"


def test_a_run_whose_settling_failed_ends_when_its_jobs_last_event_comes_back(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit_function: tuple[ModuleType, Invoke],
    track_function: Invoke,
) -> None:
    submitted = submitted_finetune(local_stack, submit_function)
    *started, succeeded = lifecycle(submitted.batch["main"])
    assert track_function(in_sqs(*started)) == {"batchItemFailures": []}
    faults.fail_before("dynamodb", "BatchGetItem", times=6)  # every botocore attempt to read the run
    ended = in_sqs(succeeded)

    assert len(track_function(ended)["batchItemFailures"]) == 1, "the job ended, its run not: the event comes back"
    assert track_function(ended) == {"batchItemFailures": []}, "the redelivery (the same warm instance)"

    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "succeeded", "the run ends with its job"
