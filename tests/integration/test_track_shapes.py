"""The track handler fed Batch's events in the shapes beyond one container, as AWS sends them: an
`ecsProperties` job (codes and reasons only in its attempts), a multi-node parallel job's nodes, an EKS
job (the committed `events/track/` samples, pointed at jobs the submit function really submitted)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import in_sqs

from batchdrop.store.records import JobRecord
from tests.conftest import load_event
from tests.integration.conftest import LocalStack
from tests.integration.test_track import job_events, submit_spec, table_of

Invoke = Callable[[dict[str, Any]], Any]


@pytest.fixture
def submitted(local_stack: LocalStack) -> tuple[JobRecord, Invoke]:
    """A job the submit function submitted, and the track handler."""
    submit_fn = local_stack.stack.functions["SubmitFunction"]
    track_fn = local_stack.stack.functions["TrackFunction"]
    submit_module: ModuleType = load_handler(submit_fn)
    track_module = load_handler(track_fn)
    spec = submit_spec(
        local_stack, lambda event: invoke(submit_fn, submit_module, event), submit_module, "gpu-finetune.yaml", "vision"
    )
    local_stack.published_events()
    return spec.jobs["main"], lambda event: invoke(track_fn, track_module, event)


def as_job(name: str, job_id: str) -> dict[str, Any]:
    """A committed sample, as an event of this job (a node sample: of its nodes)."""
    event = load_event(f"track/{name}")
    sample_id = event["detail"]["jobId"].split("#")[0]
    moved: dict[str, Any] = json.loads(json.dumps(event).replace(sample_id, job_id))
    return moved


def test_an_ecs_properties_success_keeps_each_attempts_end(
    local_stack: LocalStack, submitted: tuple[JobRecord, Invoke]
) -> None:
    job, track = submitted
    assert track(in_sqs(as_job("ecs-properties-succeeded", job.job_id))) == {"batchItemFailures": []}
    record = table_of(local_stack).get_job(job.job_id, with_history=True)
    assert record is not None
    assert (record.status, record.exit_code, record.attempts) == ("SUCCEEDED", 0, 2)
    assert [(end.attempt, end.failure_class) for end in record.attempt_ends] == [(1, "spot_reclaim"), (2, None)]
    end = record.history["2:SUCCEEDED"].attempt_end
    assert end is not None
    assert end.attempt == 2
    assert end.exit_code == 0


def test_an_ecs_properties_failure_says_why_and_a_retry_says_why_it_was_retried(
    local_stack: LocalStack, submitted: tuple[JobRecord, Invoke]
) -> None:
    job, track = submitted
    failed = as_job("ecs-properties-failed", job.job_id)
    retry = json.loads(json.dumps(failed))
    retry["detail"].update(status="RUNNABLE", attempts=failed["detail"]["attempts"][:1])
    retry["id"], retry["time"] = "retry-of-attempt-1", "2026-11-23T20:21:00Z"
    assert track(in_sqs(retry)) == {"batchItemFailures": []}
    assert track(in_sqs(failed)) == {"batchItemFailures": []}
    record = table_of(local_stack).get_job(job.job_id, with_history=True)
    assert record is not None
    assert (record.status, record.exit_code, record.failure_class) == ("FAILED", 3, "non_zero_exit")
    assert record.failure == "the program exited with code 3", "not 'Batch gave no reason'"
    assert record.status_reason == "Essential container in task exited", "the last attempt's reason"
    assert [end.failure for end in record.attempt_ends] == [
        "out of memory (exit code 137)",
        "the program exited with code 3",
    ]
    assert record.history["1:RUNNABLE"].reason == "attempt 1 failed: out of memory (exit code 137)"
    run = table_of(local_stack).get_run(job.run_id)
    assert run is not None
    assert run.reason == "step main: the program exited with code 3"


def test_a_nodes_failure_reaches_its_job_and_the_main_nodes_end_is_the_jobs(
    local_stack: LocalStack, submitted: tuple[JobRecord, Invoke]
) -> None:
    job, track = submitted
    child = as_job("multi-node-child-failed", job.job_id)
    assert track(in_sqs(child)) == {"batchItemFailures": []}
    record = table_of(local_stack).get_job(job.job_id, with_history=True)
    assert record is not None
    assert record.status == "SUBMITTED", "a child node does not decide its job's status"
    node = record.history["1:node 1 FAILED"]
    assert node.reason == "out of memory (exit code 137)"
    assert node.attempt_end is not None
    assert (node.attempt_end.node, node.attempt_end.exit_code) == (1, 137)
    main = as_job("multi-node-main-failed", job.job_id)
    last = job.max_attempts  # its retry strategy's last attempt: Batch retries it no more (docs/multinode.md)
    main["detail"]["attempts"] *= last
    assert track(in_sqs(main)) == {"batchItemFailures": []}
    record = table_of(local_stack).get_job(job.job_id, with_history=True)
    assert record is not None
    assert (record.status, record.exit_code, record.failure_class) == ("FAILED", 1, "non_zero_exit")
    assert {f"{last}:node 0 FAILED", "1:node 1 FAILED", f"{last}:FAILED"} <= set(record.history)
    assert [event["body"]["status"] for event in job_events(local_stack)] == ["failed"]


def test_an_eks_job_is_tracked_without_logs_or_usage(
    local_stack: LocalStack, submitted: tuple[JobRecord, Invoke]
) -> None:
    job, track = submitted
    assert track(in_sqs(as_job("eks-failed", job.job_id))) == {"batchItemFailures": []}
    record = table_of(local_stack).get_job(job.job_id)
    assert record is not None
    assert (record.status, record.attempts, record.exit_code) == ("FAILED", 1, 137)
    assert record.failure_class == "out_of_memory"
    assert record.log_links == []
    assert record.usage is None
