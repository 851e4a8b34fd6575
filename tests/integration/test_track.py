"""The tracking path: Batch's events (any order, at least once) -> track handler -> records, runs, events.

Jobs are submitted for real by the submit function (so their records are what
production writes), then Batch's events for them are made with the shape of
the committed `events/track/` samples and delivered as SQS batches.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import as_batch_shows_it, attempt, in_sqs, state_change
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchdrop.gateways.batch import BatchGateway
from batchdrop.store.child_states import run_time_bucket
from batchdrop.store.claims import RunClaims
from batchdrop.store.job_states import JobStates
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import JobRecord, RunRecord, SpecSource, Transition
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery
from batchdrop.track.reconcile import Reconciler
from tests.conftest import EXAMPLES, load_event
from tests.integration.conftest import LocalStack

T0 = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)
Invoke = Callable[[dict[str, Any]], Any]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Submitted:
    run: RunRecord
    jobs: dict[str, JobRecord]
    """By step."""
    batch: dict[str, dict[str, Any]]
    """By step: the job as Batch shows it (what its events carry)."""


@pytest.fixture
def functions(local_stack: LocalStack) -> tuple[ModuleType, Invoke, ModuleType, Invoke]:
    submit_fn = local_stack.stack.functions["SubmitFunction"]
    track_fn = local_stack.stack.functions["TrackFunction"]
    submit_module = load_handler(submit_fn)
    track_module = load_handler(track_fn)
    return (
        submit_module,
        lambda event: invoke(submit_fn, submit_module, event),
        track_module,
        lambda event: invoke(track_fn, track_module, event),
    )


def submit_spec(stack: LocalStack, submit: Invoke, module: ModuleType, spec: str, team: str) -> Submitted:
    upload = stack.upload(f"incoming/{team}/{spec}", (EXAMPLES / "specs" / spec).read_bytes())
    assert submit(stack.s3_event(upload)) == {"batchItemFailures": []}
    table = RecordQueries(stack.client("dynamodb"), stack.table)
    run = table.get_run(
        module.Submitter.run_id(SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id))
    )
    assert run is not None
    assert run.status == "submitted"
    records = table.get_jobs(job.job_id for job in run.jobs)
    described = {
        job["jobId"]: job for job in stack.client("batch").describe_jobs(jobs=[job.job_id for job in run.jobs])["jobs"]
    }
    return Submitted(
        run=run,
        jobs={job.step: records[job.job_id] for job in run.jobs},
        batch={
            job.step: as_batch_shows_it(described[job.job_id], records[job.job_id].resources.model_dump())
            for job in run.jobs
        },
    )


def table_of(stack: LocalStack) -> RecordQueries:
    return RecordQueries(stack.client("dynamodb"), stack.table)


def job_events(stack: LocalStack, type_: str = "job.status") -> list[dict[str, Any]]:
    return [event for event in stack.published_events() if event["body"]["type"] == type_]


def lifecycle(job: dict[str, Any], *, fail: bool = False, retried: bool = False) -> list[dict[str, Any]]:
    """A job's whole event sequence, as Batch sends it (no event at submission)."""
    events = [
        state_change(job, status, at=at(minute))
        for minute, status in [(1, "PENDING"), (2, "RUNNABLE"), (3, "STARTING"), (4, "RUNNING")]
    ]
    attempts: list[dict[str, Any]] = []
    if retried:
        reclaimed = attempt(
            job,
            1,
            started=at(4),
            stopped=at(10),
            exit_code=None,
            status_reason="Host EC2 (instance i-0abc) terminated.",
        )
        attempts = [reclaimed]
        events += [
            state_change(job, "RUNNABLE", at=at(11), attempts=attempts),
            state_change(job, "RUNNING", at=at(13), attempts=attempts),
        ]
    last = attempt(
        job,
        len(attempts) + 1,
        started=at(13 if retried else 4),
        stopped=at(64),
        exit_code=1 if fail else 0,
        reason="OutOfMemoryError: Container killed" if fail else None,
    )
    events.append(
        state_change(
            job,
            "FAILED" if fail else "SUCCEEDED",
            at=at(64),
            attempts=[*attempts, last],
            exit_code=1 if fail else 0,
            reason="Essential container in task exited",
        )
    )
    return events


# ---------------------------------------------------------------- one job, every status


def test_a_job_goes_through_every_status_and_its_run_succeeds(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    local_stack.published_events()  # the run.submitted event
    for event in lifecycle(submitted.batch["main"]):
        assert track(in_sqs(event)) == {"batchItemFailures": []}
    job = table_of(local_stack).get_job(submitted.jobs["main"].job_id, with_history=True)
    assert job is not None
    assert job.status == "SUCCEEDED"
    assert [t.status for t in job.ordered_history()] == [
        "SUBMITTED",
        "PENDING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert job.exit_code == 0
    assert job.log_links[0].log_group == "/aws/batch/job"
    assert job.log_links[0].url.startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home")
    assert job.usage is not None
    assert job.usage.vcpu_hours == pytest.approx(8 * 1.0)  # 8 vCPUs for the 60-minute attempt
    assert job.usage.gpu_hours == pytest.approx(1.0)
    assert job.usage.memory_gib_hours == pytest.approx(60.0)
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "succeeded"
    assert run.usage is not None
    assert run.usage.gpu_hours == pytest.approx(1.0)
    events = job_events(local_stack)
    assert [e["body"]["status"] for e in events] == ["running", "succeeded"]  # its notify.on
    assert events[1]["body"]["previous_status"] == "running"
    assert events[1]["attributes"] == {
        "team": "vision",
        "type": "job.status",
        "status": "succeeded",
        "environment": "adhoc",
    }


def test_duplicates_and_stale_events_change_nothing_and_tell_once(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    local_stack.published_events()
    pending, runnable, _, running, _ = lifecycle(submitted.batch["main"])
    track(in_sqs(running, running))  # RUNNING twice in one batch
    track(in_sqs(running))  # and again later
    track(in_sqs(runnable, pending))  # older events, late
    job = table_of(local_stack).get_job(submitted.jobs["main"].job_id, with_history=True)
    assert job is not None
    assert job.status == "RUNNING"
    assert "0:RUNNABLE" in job.history, "a late event still joins the history"
    assert [e["body"]["status"] for e in job_events(local_stack)] == ["running"]


def test_every_permutation_of_a_retried_jobs_events_ends_in_the_same_state(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    """RUNNABLE, RUNNING, a spot reclaim (RUNNABLE with one attempt), RUNNING, SUCCEEDED: 120 orders."""
    submit_module, submit, track_module, _ = functions
    template = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    table = table_of(local_stack)
    sequence = [
        e
        for e in lifecycle(template.batch["main"], retried=True)
        if e["detail"]["status"] != "PENDING" and e["detail"]["status"] != "STARTING"
    ]
    assert [e["detail"]["status"] for e in sequence] == ["RUNNABLE", "RUNNING", "RUNNABLE", "RUNNING", "SUCCEEDED"]
    orders = list(itertools.permutations(range(len(sequence))))
    clones = _clone_jobs(table, template.jobs["main"], len(orders))
    for position in range(len(sequence)):  # one batch per position: each job gets one event per batch
        batch = [
            _delivery(json.loads(json.dumps(sequence[order[position]]).replace(template.jobs["main"].job_id, clone)))
            for clone, order in zip(clones, orders, strict=True)
        ]
        assert not track_module.tracker.track(batch).failed
    final = table.get_jobs(clones)
    assert {record.status for record in final.values()} == {"SUCCEEDED"}
    assert {record.attempts for record in final.values()} == {2}
    histories = {tuple(t.key for t in table.get_history(job_id)) for job_id in clones}
    assert histories == {("0:SUBMITTED", "0:RUNNABLE", "0:RUNNING", "1:RUNNABLE", "1:RUNNING", "2:SUCCEEDED")}


def _clone_jobs(table: RecordQueries, record: JobRecord, count: int) -> list[str]:
    """Fresh copies of a submitted job's record (as the submit function writes them), under new ids."""
    batch = uuid.uuid4().hex[:6]
    clones = [f"{record.job_id}-{batch}-{index:04d}" for index in range(count)]
    submitted = {"0:SUBMITTED": Transition(status="SUBMITTED", at=record.submitted_at)}
    RunClaims(table.client, table.table_name).write_new(
        [], [record.model_copy(update={"job_id": clone, "history": submitted}) for clone in clones]
    )
    return clones


def _delivery(event: dict[str, Any]) -> Delivery:
    return Delivery(message_id=event["id"], event=BatchEvent.model_validate(event))


# ---------------------------------------------------------------- failures, runs, pipelines


def test_a_failure_is_classified_linked_and_fails_the_run(
    local_stack: LocalStack,
    functions: tuple[ModuleType, Invoke, ModuleType, Invoke],
    capsys: pytest.CaptureFixture[str],
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "cpu-report.yaml", "forecasting")
    local_stack.published_events()
    job = submitted.batch["main"]
    sample = load_event("track/state-change-failed-oom")["detail"]
    oom = attempt(
        job, 1, started=at(3), stopped=at(30), exit_code=137, reason=sample["attempts"][0]["container"]["reason"]
    )
    failed = state_change(job, "FAILED", at=at(30), exit_code=137, reason=sample["statusReason"], attempts=[oom])
    assert track(in_sqs(state_change(job, "RUNNING", at=at(3)), failed)) == {"batchItemFailures": []}
    record = table_of(local_stack).get_job(submitted.jobs["main"].job_id)
    assert record is not None
    assert (record.status, record.exit_code, record.failure_class) == ("FAILED", 137, "out_of_memory")
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "failed"
    assert run.reason == "step main: out of memory (exit code 137)"
    (event,) = job_events(local_stack)  # notify.on is [failed]: running is not told
    assert event["body"]["status"] == "failed"
    assert event["body"]["failure_class"] == "out_of_memory"
    assert event["body"]["exit_code"] == 137
    assert [link["attempt"] for link in event["body"]["log_links"]] == [1]
    assert event["body"]["receipt_uri"].endswith("receipts/forecasting/cpu-report.yaml.json")
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    ended = [metric for metric in emitted if "JobsFailed" in metric]
    assert [(metric["team"], metric["queue"], metric["JobsFailed"]) for metric in ended] == [
        ("forecasting", "cpu-shared", [1.0])
    ], "the dashboard's outcomes by team and queue (EMF)"


def test_a_failed_step_fails_the_steps_that_wait_for_it(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "resnet-pipeline.yaml", "vision")
    prep = submitted.batch["prep"]
    track(in_sqs(state_change(prep, "RUNNING", at=at(2))))
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "running"
    track(in_sqs(lifecycle(prep, fail=True)[-1]))
    jobs = table_of(local_stack).get_jobs(job.job_id for job in submitted.run.jobs)
    by_step = {record.step: record for record in jobs.values()}
    assert by_step["prep"].status == "FAILED"
    for step in ("train", "evaluate"):
        assert by_step[step].status == "FAILED"
        assert by_step[step].failure == "upstream step `prep` failed"
        assert by_step[step].failure_class == "dependency"
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "failed"
    failed = [e["body"]["step"] for e in job_events(local_stack) if e["body"]["status"] == "failed"]
    assert sorted(failed) == ["evaluate", "prep", "train"]


def test_a_batch_carrying_several_jobs_of_one_run_settles_the_run_once_right(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "resnet-pipeline.yaml", "vision")
    prep, train, evaluate = (submitted.batch[step] for step in ("prep", "train", "evaluate"))
    table = table_of(local_stack)
    # One job ends and, later in the same batch, another starts: the run is running, not over.
    assert track(in_sqs(lifecycle(prep)[-1], state_change(train, "RUNNING", at=at(70)))) == {"batchItemFailures": []}
    run = table.get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "running"
    # The last two jobs end in one batch: the run ends with them.
    assert track(in_sqs(lifecycle(train)[-1], lifecycle(evaluate)[-1])) == {"batchItemFailures": []}
    run = table.get_run(submitted.run.run_id)
    assert run is not None
    assert (run.status, run.reason) == ("succeeded", None)
    assert run.usage is not None
    assert run.usage.vcpu_hours == pytest.approx(8 + 2), "prep's 8 vCPUs and evaluate's 2, an hour each"


def test_a_failure_settles_its_run_even_when_another_job_starts_in_the_same_batch(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "resnet-pipeline.yaml", "vision")
    prep, evaluate = submitted.batch["prep"], submitted.batch["evaluate"]
    failed = lifecycle(prep, fail=True)[-1]
    assert track(in_sqs(failed, state_change(evaluate, "RUNNABLE", at=at(65)))) == {"batchItemFailures": []}
    jobs = table_of(local_stack).get_jobs(job.job_id for job in submitted.run.jobs)
    assert {record.step: record.status for record in jobs.values()} == {
        "prep": "FAILED",
        "train": "FAILED",
        "evaluate": "FAILED",
    }
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "failed"


def test_multi_container_jobs_link_every_containers_log(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    sample = load_event("track/multi-container-running")
    job = {**submitted.batch["main"], "ecsProperties": sample["detail"]["ecsProperties"]}
    job.pop("container")
    track(in_sqs(state_change(job, "RUNNING", at=at(3))))
    record = table_of(local_stack).get_job(submitted.jobs["main"].job_id)
    assert record is not None
    assert {(link.container, link.log_stream) for link in record.log_links} == {
        ("trainer", "release/trainer/2b3c"),
        ("metrics-sidecar", "release/metrics-sidecar/2b3c"),
    }


# ---------------------------------------------------------------- arrays


def test_array_children_are_counted_on_the_parent_with_few_writes(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, track_module, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "lr-grid-1000.yaml", "vision")
    local_stack.published_events()
    parent = submitted.batch["main"]
    children = [
        {**parent, "jobId": f"{parent['jobId']}:{index}", "arrayProperties": {"index": index}} for index in range(1000)
    ]
    child_events = [state_change(child, "RUNNING", at=at(5)) for child in children]
    child_events += [
        state_change(
            child,
            "SUCCEEDED",
            at=at(35),
            exit_code=0,
            attempts=[attempt(child, 1, started=at(5), stopped=at(35), exit_code=0)],
        )
        for child in children
    ]
    random.Random(7).shuffle(child_events)
    writes = _count_writes(track_module)
    for start in range(0, len(child_events), 100):
        assert track(in_sqs(*child_events[start : start + 100])) == {"batchItemFailures": []}
    assert writes["count"] / len(child_events) <= 0.1, writes
    record = table_of(local_stack).get_job(submitted.jobs["main"].job_id)
    assert record is not None
    assert record.children == {"RUNNING": 0, "SUCCEEDED": 1000}
    assert record.child_usage.gpu_hours == pytest.approx(1000 * 0.5)  # 1 GPU for 30 minutes each
    stored = JobStates(local_stack.client("dynamodb"), local_stack.table).get_children(record.job_id)
    assert stored.run_times == {run_time_bucket(30 * 60): 1000}, "each child's 30 minutes, counted once"
    assert job_events(local_stack) == [], "an array job speaks once, when it ends"
    summary = {"SUCCEEDED": 1000}
    ended = state_change(
        {**parent, "arrayProperties": {"size": 1000, "statusSummary": summary}}, "SUCCEEDED", at=at(36)
    )
    track(in_sqs(ended))
    (event,) = job_events(local_stack)
    assert event["body"]["children"] == summary
    assert event["body"]["usage"]["gpu_hours"] == pytest.approx(500.0)
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "succeeded"


def test_two_instances_merging_one_arrays_children_count_each_childs_run_time_once(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, _ = functions
    submitted = submit_spec(local_stack, submit, submit_module, "lr-grid-1000.yaml", "vision")
    parent = submitted.batch["main"]
    minutes = {index: 1 + index % 40 for index in range(300)}  # each child its own run time
    child_events = []
    for index, ran in minutes.items():
        child = {**parent, "jobId": f"{parent['jobId']}:{index}", "arrayProperties": {"index": index}}
        child_events.append(state_change(child, "RUNNING", at=at(5)))
        stop = at(5 + ran)
        done = attempt(child, 1, started=at(5), stopped=stop, exit_code=0)
        child_events.append(state_change(child, "SUCCEEDED", at=stop, exit_code=0, attempts=[done]))
    child_events += child_events  # everything delivered twice
    random.Random(11).shuffle(child_events)
    function = local_stack.stack.functions["TrackFunction"]
    instances = [load_handler(function) for _ in range(2)]
    barrier = threading.Barrier(2)

    def deliver(module: ModuleType, share: list[dict[str, Any]]) -> None:
        barrier.wait()
        for start in range(0, len(share), 20):  # small batches: the two merge the same item often
            invoke(function, module, in_sqs(*share[start : start + 20]))

    shares = [child_events[0::2], child_events[1::2]]
    threads = [threading.Thread(target=deliver, args=pair) for pair in zip(instances, shares, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = JobStates(local_stack.client("dynamodb"), local_stack.table).get_children(parent["jobId"])
    expected: dict[int, int] = {}
    for ran in minutes.values():
        expected[run_time_bucket(ran * 60)] = expected.get(run_time_bucket(ran * 60), 0) + 1
    assert stored.run_times == expected, "each child counted once, in its own bucket, whoever merged it"
    assert stored.counts.get("SUCCEEDED") == 300


def _count_writes(module: ModuleType) -> dict[str, int]:
    writes = {"count": 0}

    def count(**_: Any) -> None:
        writes["count"] += 1

    events = module.tracker.table.client.meta.events
    for operation in ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems", "DeleteItem"):
        events.register(f"before-call.dynamodb.{operation}", count)
    return writes


# ---------------------------------------------------------------- ours or not


def test_events_of_jobs_batchdrop_did_not_submit_are_counted_and_skipped(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    _, _, track_module, track = functions
    foreign = load_event("track/state-change-running")
    foreign["detail"]["tags"] = {}
    result = track_module.tracker.track([_delivery(foreign)])
    assert not result.failed
    assert result.counts["ForeignEvents"] == 1
    assert track(in_sqs(foreign)) == {"batchItemFailures": []}


def test_an_event_of_our_job_not_yet_recorded_comes_back_in_seconds_not_after_the_visibility_timeout(
    local_stack: LocalStack,
    functions: tuple[ModuleType, Invoke, ModuleType, Invoke],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, track_module, track = functions
    assert track_module.early_retry is not None, "the template gives the track function its queue"
    monkeypatch.setattr(track_module.early_retry, "first_delay_seconds", 1)  # 10 s in production
    sqs = local_stack.client("sqs")
    queue = local_stack.stack.outputs["TrackingQueueUrl"]
    early = load_event("track/state-change-running")  # tagged batchdrop:run-id
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(early))

    def receive() -> list[dict[str, Any]]:
        response = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"], MaxNumberOfMessages=10)
        return list(response.get("Messages", []))

    (message,) = receive()
    record = in_sqs(early, message_ids=[message["MessageId"]])["Records"][0]
    record |= {"receiptHandle": message["ReceiptHandle"], "attributes": record["attributes"] | message["Attributes"]}
    assert track({"Records": [record]}) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert receive() == [], "still out of sight"
    deadline = time.monotonic() + 10
    while not (back := receive()) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert [m["MessageId"] for m in back] == [message["MessageId"]], "back within seconds (the queue's timeout: 360 s)"
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=back[0]["ReceiptHandle"])


def test_a_committed_sqs_batch_of_mixed_events_is_read_whole(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    _, _, _, track = functions
    batch = load_event("track/sqs-batch")
    response = track(batch)  # none of these jobs is recorded: all are batchdrop's, so all come back later
    assert len(response["batchItemFailures"]) == len(batch["Records"])


# ---------------------------------------------------------------- stuck jobs and reconcile


def test_queue_blocked_event_sends_advice_once(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    job = submitted.batch["main"]
    reason = (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is "
        "higher than that can be met by the CE(s) attached to the job queue."
    )
    blocked = state_change(job, "RUNNABLE", at=at(45), blocked=True, reason=reason)
    track(in_sqs(blocked))
    track(in_sqs(blocked))
    (stuck,) = job_events(local_stack, "job.stuck")
    assert stuck["body"]["queue"] == "gpu-shared"
    assert "the platform config and the queue disagree" in stuck["body"]["advice"]
    assert stuck["attributes"]["type"] == "job.stuck"


def test_reconcile_fills_a_missed_end_and_marks_a_forgotten_job_lost(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, track_module, track = functions
    finished = submit_spec(local_stack, submit, submit_module, "cpu-report.yaml", "forecasting")
    forgotten = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    track(in_sqs(state_change(finished.batch["main"], "RUNNING", at=at(1))))
    track(in_sqs(state_change(forgotten.batch["main"], "RUNNING", at=at(1))))
    local_stack.published_events()
    # The emulator's Batch has finished the first job (its SUCCEEDED event was lost); the second it forgot.
    table = table_of(local_stack)
    forgotten_id = forgotten.jobs["main"].job_id
    reconciler = Reconciler(
        tracker=track_module.tracker,
        batch=_ForgetfulBatch(BatchGateway(local_stack.client("batch")), forgotten_id),  # type: ignore[arg-type]
        clock=lambda: datetime.now(UTC) + timedelta(hours=1),
    )
    counts = reconciler.reconcile()
    assert counts["QuietJobs"] == 2
    assert counts["LostJobs"] == 1
    done = table.get_job(finished.jobs["main"].job_id)
    lost = table.get_job(forgotten_id)
    assert done is not None
    assert lost is not None
    assert done.status == "SUCCEEDED"
    assert done.finished_at is not None
    assert done.finished_at < datetime.now(UTC), "it ended when Batch stopped it, not an hour later when found"
    assert lost.status == "LOST"
    assert JobStates(table.client, table.table_name).quiet_jobs(before="9999") == [], (
        "finished and lost jobs leave the watchdog's index"
    )
    lost_run = table.get_run(forgotten.run.run_id)
    assert lost_run is not None
    assert lost_run.status == "failed"
    statuses = sorted(e["body"]["status"] for e in job_events(local_stack))
    assert statuses == ["lost"], "cpu-report asks to hear of failures only; a lost job is always told"


class _ForgetfulBatch:
    """The emulator's Batch, which has forgotten one job (as Batch does a day after it ends)."""

    def __init__(self, real: BatchGateway, forgotten: str) -> None:
        self.real = real
        self.forgotten = forgotten

    def describe(self, job_ids: set[str]) -> dict[str, dict[str, Any]]:
        return self.real.describe(job_ids - {self.forgotten})


def test_reconcile_flags_a_job_runnable_too_long_with_advice_about_its_size(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, track_module, track = functions
    submitted = submit_spec(local_stack, submit, submit_module, "gpu-finetune.yaml", "vision")
    job = submitted.batch["main"]
    track(in_sqs(state_change(job, "RUNNABLE", at=datetime.now(UTC))))
    # The platform team has since shrunk the queue: the job no longer fits it.
    smaller = (EXAMPLES / "platform.yaml").read_text().replace("max_memory_mib: 249856", "max_memory_mib: 49152")
    local_stack.client("s3").put_object(Bucket=local_stack.bucket, Key="config/platform.yaml", Body=smaller.encode())
    track_module.tracker.config._loaded_at = 0  # skip the config cache's minute

    class StillRunnable:
        def describe(self, job_ids: set[str]) -> dict[str, dict[str, Any]]:
            return {
                job_id: {
                    **job,
                    "status": "RUNNABLE",
                    "statusReason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
                    " - The job resource requirement is higher than the CE(s) can meet.",
                }
                for job_id in job_ids
            }

    reconciler = Reconciler(
        tracker=track_module.tracker,
        batch=StillRunnable(),  # type: ignore[arg-type]
        clock=lambda: datetime.now(UTC) + timedelta(hours=2),
    )
    local_stack.published_events()
    assert reconciler.reconcile()["StuckJobs"] == 1
    assert reconciler.reconcile()["StuckJobs"] == 0, "told once per reason"
    (stuck,) = job_events(local_stack, "job.stuck")
    assert stuck["body"]["advice"] == (
        "The job asked queue gpu-shared for 60 GiB of memory where its largest instance has 48 GiB. "
        "Ask for less, then drop it again."
    )
    assert stuck["body"]["runnable_seconds"] >= 7200 - 60


# ---------------------------------------------------------------- concurrency and any order


def test_concurrent_batches_on_two_instances_converge(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> None:
    submit_module, submit, _, _ = functions
    submitted = submit_spec(local_stack, submit, submit_module, "resnet-pipeline.yaml", "vision")
    events = [event for step in ("prep", "train", "evaluate") for event in lifecycle(submitted.batch[step])]
    events = events + events  # everything delivered twice
    random.Random(3).shuffle(events)
    function = local_stack.stack.functions["TrackFunction"]
    instances = [load_handler(function) for _ in range(2)]
    halves = [events[0::2], events[1::2]]
    barrier = threading.Barrier(2)

    def deliver(module: ModuleType, share: list[dict[str, Any]]) -> None:
        barrier.wait()
        for start in range(0, len(share), 5):
            invoke(function, module, in_sqs(*share[start : start + 5]))

    threads = [threading.Thread(target=deliver, args=pair) for pair in zip(instances, halves, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = table_of(local_stack).get_jobs(job.job_id for job in submitted.run.jobs)
    assert {record.status for record in records.values()} == {"SUCCEEDED"}
    run = table_of(local_stack).get_run(submitted.run.run_id)
    assert run is not None
    assert run.status == "succeeded"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_interleaving_of_many_jobs_events_with_duplicates_ends_right(
    local_stack_once: tuple[LocalStack, ModuleType, JobRecord, dict[str, Any]], data: st.DataObject
) -> None:
    stack, track_module, template, batch_view = local_stack_once
    table = table_of(stack)
    jobs = _clone_jobs(table, template, 6)
    expected: dict[str, str] = {}
    stream: list[dict[str, Any]] = []
    for job_id in jobs:
        fail = data.draw(st.booleans())
        retried = data.draw(st.booleans())
        expected[job_id] = "FAILED" if fail else "SUCCEEDED"
        view = {**batch_view, "jobId": job_id}
        stream += lifecycle(view, fail=fail, retried=retried)
    stream += data.draw(st.lists(st.sampled_from(stream), max_size=len(stream) // 2))  # duplicates
    stream = data.draw(st.permutations(stream))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    for start, end in itertools.pairwise([0, *cuts, len(stream)]):
        if start < end:
            result = track_module.tracker.track([_delivery(event) for event in stream[start:end]])
            assert not result.failed
    final = table.get_jobs(jobs)
    assert {job_id: record.status for job_id, record in final.items()} == expected
    for job_id, record in final.items():
        keys = [t.key for t in table.get_history(job_id)]
        assert len(keys) == len(set(keys)), "each transition once"
        assert keys[-1].endswith(record.status)


@pytest.fixture
def local_stack_once(
    local_stack: LocalStack, functions: tuple[ModuleType, Invoke, ModuleType, Invoke]
) -> tuple[LocalStack, ModuleType, JobRecord, dict[str, Any]]:
    submit_module, submit, track_module, _ = functions
    submitted = submit_spec(local_stack, submit, submit_module, "cpu-report.yaml", "forecasting")
    return local_stack, track_module, submitted.jobs["main"], submitted.batch["main"]
