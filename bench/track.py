"""The tracking path (issue 4): events per second, DynamoDB writes per event, time per event vs one UpdateItem.

Against the embedded AWS (in a process of its own), in one run:

- 1,000 recorded jobs (one run each; one in ten fails) with their whole event
  sequences (PENDING, RUNNABLE, STARTING, RUNNING, then SUCCEEDED or FAILED),
  plus one array job of 10,000 children (each child RUNNABLE, RUNNING,
  SUCCEEDED, and the parent's own events); everything shuffled, one event in
  five delivered twice, in SQS batches of 100, through the track handler in a
  process of its own. Its DynamoDB write requests are counted.
- The floor: one bare conditional UpdateItem on a job record, timed alone.
- The final states are checked in the same run: every job, every run, the
  array's counts.
- The outbox's cost: the publish function over every change the handler
  recorded (no write of its own: the table's stream is the outbox), and the
  events it told, checked: one terminal `job.status` per job.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from batchdrop_local.emulator import SeparateEmbeddedAws
from batchdrop_local.local_stack import create_stack
from batchdrop_local.state_changes import attempt, in_sqs, sample_job, state_change

from batchdrop.spec.model import Resources
from batchdrop.store.claims import RunClaims
from batchdrop.store.items import job_key, serialize
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import JobRecord, RunRecord, SpecSource, SubmittedJobRef, Transition
from bench.report import Figure, against_separate_aws, outbox, run_worker, tell_in_own_process

JOBS = 1000
CHILDREN = 10_000
DUPLICATED = 0.2
BATCH = 100
WRITES_TARGET = 0.3
TIME_TARGET = 0.5
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run() -> list[Figure]:
    return against_separate_aws(_measure)


def _records(table: RecordQueries, bucket: str) -> tuple[list[JobRecord], JobRecord]:
    """1,000 single-job runs and one array run, written as the submit function writes them."""
    source = SpecSource(bucket=bucket, key="incoming/vision/bench.yaml", version_id="v1")
    jobs: list[JobRecord] = []
    runs: list[RunRecord] = []
    for index in range(JOBS + 1):
        is_array = index == JOBS
        job = JobRecord(
            job_id=f"job-{index:05d}",
            run_id=f"run-{index:05d}",
            team="vision",
            environment="adhoc",
            spec_name="bench",
            step="main",
            job_name=f"bench-main-run{index:05d}",
            queue="gpu-shared",
            queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/gpu-shared",
            hardware="gpu",
            job_definition="trainer",
            job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
            resources=Resources(vcpus=8, memory_mib=61440, gpus=1),
            array_size=CHILDREN if is_array else None,
            history={"0:SUBMITTED": Transition(status="SUBMITTED", at=T0)},
            submitted_at=T0,
            last_event_at=T0,
            spec_digest="0" * 64,
            source=source,
            notify_on=["failed", "succeeded"],
        )
        jobs.append(job)
        runs.append(
            RunRecord(
                run_id=job.run_id,
                team="vision",
                status="submitted",
                source=source,
                received_at=T0,
                claim_owner="bench",
                claimed_at=T0,
                environment="adhoc",
                spec_name="bench",
                jobs=[
                    SubmittedJobRef(
                        step="main",
                        job_id=job.job_id,
                        job_name=job.job_name,
                        queue=job.queue,
                        hardware="gpu",
                        array_size=job.array_size,
                    )
                ],
                submitted_at=T0,
            )
        )
    RunClaims(table.client, table.table_name).write_new(runs, jobs)
    return jobs[:JOBS], jobs[JOBS]


def _batch_view(record: JobRecord, job_id: str | None = None) -> dict[str, Any]:
    job = sample_job(job_id or record.job_id, name=record.job_name)
    job["tags"]["batchdrop:run-id"] = record.run_id
    return job


def _events(jobs: list[JobRecord], array: JobRecord) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = random.Random(2026)
    events: list[dict[str, Any]] = []
    expected: dict[str, str] = {}
    for index, record in enumerate(jobs):
        job = _batch_view(record)
        fails = index % 10 == 0
        expected[record.job_id] = "FAILED" if fails else "SUCCEEDED"
        events += [
            state_change(job, status, at=at(minute))
            for minute, status in [(1, "PENDING"), (2, "RUNNABLE"), (3, "STARTING"), (4, "RUNNING")]
        ]
        last = attempt(job, 1, started=at(4), stopped=at(34), exit_code=1 if fails else 0)
        events.append(
            state_change(
                job, "FAILED" if fails else "SUCCEEDED", at=at(34), attempts=[last], exit_code=1 if fails else 0
            )
        )
    parent = _batch_view(array)
    parent["arrayProperties"] = {"size": CHILDREN, "statusSummary": {}}
    events += [state_change(parent, "PENDING", at=at(1)), state_change(parent, "RUNNING", at=at(5))]
    for index in range(CHILDREN):
        child = {**_batch_view(array, f"{array.job_id}:{index}"), "arrayProperties": {"index": index}}
        events += [
            state_change(child, "RUNNABLE", at=at(2)),
            state_change(child, "RUNNING", at=at(5)),
            state_change(
                child,
                "SUCCEEDED",
                at=at(20),
                exit_code=0,
                attempts=[attempt(child, 1, started=at(5), stopped=at(20), exit_code=0)],
            ),
        ]
    events += rng.sample(events, int(len(events) * DUPLICATED))
    rng.shuffle(events)
    ended = {**parent, "arrayProperties": {"size": CHILDREN, "statusSummary": {"SUCCEEDED": CHILDREN}}}
    events.append(state_change(ended, "SUCCEEDED", at=at(21)))  # an array ends after its children
    expected[array.job_id] = "SUCCEEDED"
    return events, expected


def _measure(aws: SeparateEmbeddedAws) -> list[Figure]:
    stack = create_stack(aws)
    table = RecordQueries(aws.client("dynamodb"), stack.outputs["RecordsTableName"])
    jobs, array = _records(table, stack.outputs["JobsBucketName"])
    reader = outbox(aws, stack)
    reader.read()  # the runs and jobs as the submit function wrote them: not tracking's to tell
    events, expected = _events(jobs, array)
    batches = [in_sqs(*events[start : start + BATCH]) for start in range(0, len(events), BATCH)]
    function = stack.functions["TrackFunction"]
    outcome = run_worker(aws, "track", function.environment, batches)
    per_event = outcome["seconds"] / len(events)
    writes_per_event = outcome["writes"] / len(events)
    floor = _bare_update_seconds(table)
    ratio = per_event / floor
    correct = _check(table, expected, array)
    probe = _subscribe_probe(aws, stack.outputs["EventsTopicArn"])
    told = tell_in_own_process(aws, stack, reader)
    statuses = _told_statuses(aws, probe)
    told_right = statuses == {job_id: status.lower() for job_id, status in expected.items()}
    return [
        Figure(
            f"track handler: {len(events):,} events in batches of {BATCH}",
            len(events) / outcome["seconds"],
            "events/s",
            detail=f"{outcome['failures']} records returned to the queue",
        ),
        Figure(
            "DynamoDB write requests per event",
            writes_per_event,
            "",
            target=f"≤ {WRITES_TARGET}",
            within=writes_per_event <= WRITES_TARGET,
            detail=f"{outcome['writes']:,} writes; a write per event would be ≥ 1",
        ),
        Figure(
            "time per event / one bare conditional UpdateItem",
            ratio,
            "×",
            target=f"≤ {TIME_TARGET}",
            within=ratio <= TIME_TARGET,
            detail=f"{per_event * 1000:.2f} ms per event, {floor * 1000:.2f} ms per UpdateItem",
        ),
        Figure(
            "final states correct (jobs, runs, array counts)",
            1.0 if correct else 0.0,
            "",
            within=correct,
            detail="" if correct else "see the assertion above",
        ),
        Figure(
            "outbox: publish function time per event tracked",
            told["seconds"] / len(events) * 1000,
            "ms",
            detail=f"{told['changes']:,} changes read, {told['writes']} DynamoDB writes, "
            f"{told['failures']} handed over again",
        ),
        Figure(
            "outbox: every job's end told once (by event_id)",
            1.0 if told_right else 0.0,
            "",
            within=told_right,
            detail=f"{len(statuses):,} jobs told",
        ),
    ]


def _subscribe_probe(aws: SeparateEmbeddedAws, topic: str) -> str:
    sqs = aws.client("sqs")
    url: str = sqs.create_queue(QueueName="bench-events-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def _told_statuses(aws: SeparateEmbeddedAws, probe: str) -> dict[str, str]:
    """The status each job's `job.status` events told, from the probe's copies; a job told two
    different ends, or the same end under two event ids, is marked `twice`."""
    sqs = aws.client("sqs")
    told: dict[str, tuple[str, str]] = {}
    while batch := sqs.receive_message(QueueUrl=probe, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            event = json.loads(json.loads(message["Body"])["Message"])
            if event["type"] == "job.status" and event["status"] in {"succeeded", "failed"}:
                seen = told.setdefault(event["job_id"], (event["status"], event["event_id"]))
                if seen != (event["status"], event["event_id"]):
                    told[event["job_id"]] = ("twice", "")
        sqs.delete_message_batch(
            QueueUrl=probe,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return {job_id: status for job_id, (status, _) in told.items()}


def _bare_update_seconds(table: RecordQueries, samples: int = 300) -> float:
    """One conditional UpdateItem of a job record, as the tracker makes (median-free: a mean of many)."""
    client = table.client
    key = job_key("bench-floor")
    client.put_item(TableName=table.table_name, Item={**key, "status_order": {"S": "000"}})
    started = time.perf_counter()
    for index in range(samples):
        client.update_item(
            TableName=table.table_name,
            Key=key,
            UpdateExpression="SET status_order = :order",
            ConditionExpression="attribute_exists(PK) AND status_order < :order",
            ExpressionAttributeValues=serialize({":order": f"{index + 1:06d}"}),
        )
    return (time.perf_counter() - started) / samples


def _check(table: RecordQueries, expected: dict[str, str], array: JobRecord) -> bool:
    records = table.get_jobs(expected)
    wrong = {job_id: records[job_id].status for job_id, status in expected.items() if records[job_id].status != status}
    parent = records[array.job_id]
    runs_ok = all(
        (run := table.get_run(records[job_id].run_id)) is not None
        and run.status == ("succeeded" if status == "SUCCEEDED" else "failed")
        for job_id, status in list(expected.items())[:50]
    )
    counts_ok = parent.children.get("SUCCEEDED") == CHILDREN and sum(parent.children.values()) == CHILDREN
    if wrong or not runs_ok or not counts_ok:
        print(f"    wrong: {list(wrong.items())[:5]} runs_ok={runs_ok} children={parent.children}")
    return not wrong and runs_ok and counts_ok


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
