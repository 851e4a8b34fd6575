"""Random fault schedules over a stream of drops and Batch events: nothing duplicated, nothing lost.

Hypothesis draws a schedule of faults, injected beneath botocore's retry layer
(tests/faults.py): up to four rules, each for one operation the functions call
(Batch SubmitJob/ListJobs; DynamoDB writes and reads; S3 reads and writes; SNS
publishes), of one kind (refused before applying, applied then answered 500,
throttled, connection dropped after applying), acting on the Nth request of
that operation in the example, or on it and the five after it (a burst that
outlasts botocore's six attempts, so the function itself fails). The stream
is a few drops (a pipeline with an array step, a single GPU job, a file with a
typo) handled by the submit function, their jobs' Batch events (in Batch's
order, cut into SQS batches) handled by the track function, and the records
table's stream told by the publish function at drawn moments. Whatever a
function reports failed is handed to it again, as the intake queue (5
receives), the tracking queue (8) and the stream (until told) would; at the
end the faults are cleared and the stream drained. Then:

- every drop has one run record (with a job per step planned, ended with its
  jobs), a receipt, one `run.submitted` or `run.rejected` event and, once its
  jobs have ended, one `run.ended` (by event_id);
- every planned job exists once in Batch;
- every job's record is in the state of the last Batch event given;
- every `job.status` the spec asked for (failures always) is told, under one
  event_id, and nothing else is;
- no message was left failed after its queue's receives (the DLQ is empty).

One stack serves every example (creating one costs seconds): each example
drops under its own keys, so its runs, jobs and events are its own.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import as_batch_shows_it, in_sqs, state_change
from botocore.retries.standard import ExponentialBackoff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchdrop.gateways.bucket import locate
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import RunRecord, SpecSource
from batchdrop.submit.submitter import Submitter
from tests.conftest import EXAMPLES
from tests.faults import FaultKind, FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import as_if_redelivered
from tests.integration.test_track import at, lifecycle

Invoke = Callable[[dict[str, Any]], Any]

INTAKE_RECEIVES = 5
"""The intake queue's maxReceiveCount: then the drop waits in its dead-letter queue."""
TRACKING_RECEIVES = 8
"""The tracking queue's maxReceiveCount."""
STREAM_DRAINS = 5
"""Times the stream is handed over once the faults are gone: one should do."""

DROPS = [  # (team, spec, the steps it plans: none when it is rejected)
    ("vision", EXAMPLES / "specs" / "resnet-pipeline.yaml", ["prep", "train", "evaluate"]),  # train: an array
    ("vision", EXAMPLES / "specs" / "gpu-finetune.yaml", ["main"]),  # asks to hear of running and succeeded
    ("vision", EXAMPLES / "demo" / "typo-in-gpus.yaml", []),  # rejected: `gpu` is not a field
]
TARGETS = [
    ("batch", "SubmitJob"),
    ("batch", "ListJobs"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "BatchWriteItem"),
    ("dynamodb", "TransactWriteItems"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "BatchGetItem"),
    ("s3", "GetObject"),
    ("s3", "PutObject"),
    ("sns", "PublishBatch"),
    ("sns", "Publish"),
]
KINDS: list[FaultKind] = ["fail_before", "fail_after", "throttle", "drop"]
ALWAYS_TOLD = {"failed", "lost"}
ARRAY_TOLD = {"succeeded", "failed", "lost"}
BOTOCORE_ATTEMPTS = 6
"""The functions' clients' `total_max_attempts` (Batch's: 1, its gateway decides)."""


@dataclass(frozen=True)
class Fault:
    target: tuple[str, str]
    """Service and operation."""
    kind: FaultKind
    nth: int
    """The request of that operation (from 1, in the example) it acts on..."""
    burst: bool
    """...and, if a burst, the next five too: every attempt botocore makes of that call fails."""

    def arm(self, faults: FaultProxy) -> None:
        service, operation = self.target
        for nth in range(self.nth, self.nth + (BOTOCORE_ATTEMPTS if self.burst else 1)):
            faults.add(service, operation, self.kind, nth=nth)


faults_strategy = st.builds(
    Fault,
    target=st.sampled_from(TARGETS),
    kind=st.sampled_from(KINDS),
    nth=st.integers(1, 8),
    burst=st.sampled_from([False, False, False, True]),
)


@dataclass
class Stream:
    """Hands work to the functions as their event sources would, and notes what would reach a dead-letter queue."""

    stack: LocalStack
    faults: FaultProxy
    submit: Invoke
    track: Invoke
    dead_letters: list[str] = field(default_factory=list)

    def drop(self, event: dict[str, Any]) -> None:
        """The intake queue: the same message again while the function reports it failed."""
        for _ in range(INTAKE_RECEIVES):
            if not _failed(self.submit, event):
                return
            as_if_redelivered(self.stack.client("dynamodb"), self.stack.table)
        self.dead_letters.append(f"intake: {event['Records'][0]['body'][:200]}")

    def batch_events(self, events: list[dict[str, Any]]) -> None:
        """The tracking queue: the messages the function reports failed come back (each up to its receives)."""
        pending = in_sqs(*events)["Records"]
        for _ in range(TRACKING_RECEIVES):
            failed = _failed(self.track, {"Records": pending})
            pending = [record for record in pending if record["messageId"] in failed]
            if not pending:
                return
        self.dead_letters += [f"tracking: {record['body'][:200]}" for record in pending]

    def tell(self) -> None:
        """The outbox: the table's stream, to the publish function (which may report changes failed)."""
        self.stack.tell()

    def drain(self) -> None:
        self.faults.clear_rules()
        for _ in range(STREAM_DRAINS):
            if not self.stack.tell()["batchItemFailures"]:
                return
        self.dead_letters.append("stream: changes still failing with no fault left")


def _failed(function: Invoke, event: dict[str, Any]) -> set[str]:
    """The message ids a function's invocation hands back (all of them if it raised, as Lambda does)."""
    try:
        response = function(event)
    except Exception:
        return {record["messageId"] for record in event["Records"]}
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


@dataclass(frozen=True)
class Planned:
    """One job of a submitted run, and what the stream made Batch say of it."""

    job_id: str
    job_name: str
    queue_arn: str
    array: bool
    statuses: list[str]
    """The statuses of the Batch events given, in order."""


@pytest.fixture
def one_stack(
    faults: FaultProxy, local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> tuple[FaultProxy, LocalStack, Invoke, Invoke]:
    """One stack, and the submit and track functions (through the proxy), for every example of a test."""
    submit_fn = local_stack.stack.functions["SubmitFunction"]
    track_fn = local_stack.stack.functions["TrackFunction"]
    submit_module = load_handler(submit_fn)
    track_module = load_handler(track_fn)
    monkeypatch.setattr(submit_module.submitter.batch, "sleep", lambda seconds: None)  # the gateway's back-off
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)  # botocore's
    return (
        faults,
        local_stack,
        lambda event: invoke(submit_fn, submit_module, event),
        lambda event: invoke(track_fn, track_module, event),
    )


_examples = itertools.count()


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_fault_schedules_lose_nothing_and_duplicate_nothing(
    one_stack: tuple[FaultProxy, LocalStack, Invoke, Invoke], data: st.DataObject
) -> None:
    faults, stack, submit, track = one_stack
    schedule = data.draw(st.lists(faults_strategy, min_size=1, max_size=4), label="schedule")
    faults.clear()  # ordinals count from 1 again
    for fault in schedule:
        fault.arm(faults)
    stream = Stream(stack, faults, submit, track)
    table = RecordQueries(stack.client("dynamodb"), stack.table)
    example = next(_examples)

    runs: dict[str, tuple[str, list[str]]] = {}
    """By key: the run id, and the steps the spec plans."""
    planned: list[Planned] = []
    for team, spec, steps in DROPS:
        key = f"incoming/{team}/example-{example}/{spec.name}"
        upload = stack.upload(key, spec.read_bytes())
        source = SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id, etag=upload.etag)
        runs[key] = (Submitter.run_id(source), steps)
        stream.drop(stack.s3_event(upload))  # one SQS message, handed over again while it fails
        if data.draw(st.booleans(), label=f"tell after dropping {spec.name}"):
            stream.tell()
        run = table.get_run(runs[key][0])
        if run is None or run.status != "submitted":
            continue  # rejected, or left failed: the checks say which
        upstream_failed = False
        for job in _batch_views(stack, table, run):
            fails = data.draw(st.booleans(), label=f"{job['jobName']} fails")
            if upstream_failed:  # Batch fails a job whose dependency failed; it never runs
                events = [state_change(job, "FAILED", at=at(65), reason="Dependent Job failed")]
            else:
                events = lifecycle(job, fail=fails)
                upstream_failed = fails
            planned.append(
                Planned(
                    job_id=job["jobId"],
                    job_name=job["jobName"],
                    queue_arn=job["jobQueue"],
                    array="size" in job.get("arrayProperties", {}),
                    statuses=[event["detail"]["status"] for event in events],
                )
            )
            while events:  # in Batch's order, cut into SQS batches
                size = data.draw(st.integers(1, 3), label="events in an SQS batch")
                stream.batch_events(events[:size])
                events = events[size:]
                if data.draw(st.booleans(), label="tell"):
                    stream.tell()
    stream.drain()

    published = [event["body"] for event in stack.published_events()]
    assert stream.dead_letters == [], "nothing good was left failed"
    check_runs(stack, table, runs, published)
    check_jobs(stack, table, planned, published)


def _batch_views(stack: LocalStack, table: RecordQueries, run: RunRecord) -> list[dict[str, Any]]:
    """The run's jobs as Batch shows them (what their events carry), in the run's order."""
    records = table.get_jobs(ref.job_id for ref in run.jobs)
    described = {
        job["jobId"]: job for job in stack.client("batch").describe_jobs(jobs=[ref.job_id for ref in run.jobs])["jobs"]
    }
    return [as_batch_shows_it(described[ref.job_id], records[ref.job_id].resources.model_dump()) for ref in run.jobs]


def check_runs(
    stack: LocalStack, table: RecordQueries, runs: dict[str, tuple[str, list[str]]], published: list[dict[str, Any]]
) -> None:
    """One run record per drop, decided and then ended with its jobs; its receipt; one event of its decision
    and one of its end."""
    for key, (run_id, steps) in runs.items():
        run = table.get_run(run_id)
        assert run is not None, f"{key}: every drop has a run record"
        assert [job.step for job in run.jobs] == steps, f"{key}: a job for each step planned"
        if not steps:
            assert run.status == "rejected", f"{key}: rejected"
        else:  # every job of the run has ended by now
            jobs = table.get_jobs(ref.job_id for ref in run.jobs)
            ended = "succeeded" if all(job.status == "SUCCEEDED" for job in jobs.values()) else "failed"
            assert run.status == ended, f"{key}: the run ended with its jobs"
        told = Counter(
            event["type"]
            for event in {e["event_id"]: e for e in published if e["run_id"] == run_id}.values()
            if event["type"].startswith("run.")
        )
        expected = {"run.rejected": 1} if not steps else {"run.submitted": 1, "run.ended": 1}
        assert told == expected, f"{key}: each run event once, by event_id"
        location = locate(key)
        assert location is not None
        receipt = stack.receipt(location.receipt_key)
        decided = "submitted" if steps else "rejected"
        assert (receipt["run_id"], receipt["status"]) == (run_id, decided), f"{key}: its receipt"


def check_jobs(
    stack: LocalStack, table: RecordQueries, planned: list[Planned], published: list[dict[str, Any]]
) -> None:
    """Each job once in Batch, in the state of its last event, each asked-for status told under one event_id."""
    batch = stack.client("batch")
    records = table.get_jobs(job.job_id for job in planned)
    job_events = [event for event in published if event["type"] == "job.status"]
    for job in planned:
        listed = batch.list_jobs(jobQueue=job.queue_arn, filters=[{"name": "JOB_NAME", "values": [job.job_name]}])
        parents = [summary["jobId"] for summary in listed["jobSummaryList"] if ":" not in summary["jobId"]]
        assert parents == [job.job_id], f"{job.job_name}: one Batch job, the recorded one"
        record = records[job.job_id]
        assert record.status == job.statuses[-1], f"{job.job_name}: in the state of the last event given"
        asked = set(record.notify_on) | ALWAYS_TOLD
        expected = {
            status.lower()
            for status in job.statuses
            if status.lower() in asked and (not job.array or status.lower() in ARRAY_TOLD)
        }
        distinct = {event["event_id"]: event for event in job_events if event["job_id"] == job.job_id}
        told = Counter(event["status"] for event in distinct.values())
        assert told == Counter(expected), f"{job.job_name}: each asked-for status told under one event_id"
