"""Latencies on the whole local control plane (issue 17): a drop to its `run.submitted` event on an idle stack,
and a Batch job's end to its Slack message.

The control plane (`batchdrop_local.control_plane`) runs every function of the template in a process of
its own with its event sources, S3's notifications, Batch's lifecycle and a Slack receiver. Drops are
made one at a time (the stack idle between them): each is timed from the upload to its `run.submitted`
event on the events topic (a queue subscribed to it), and from its job's end (`stoppedAt`, as Batch's
SUCCEEDED event tells it) to the Slack message of its run's end. Local differences: S3's notifications
are swept every 0.5 s, and the intake's batching window (1 s in the template) is a tenth of it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchdrop_local.batch_lifecycle import Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import SeparateEmbeddedAws

from bench.report import ROOT, Figure

DROPS = 8
SPEC = (ROOT / "examples" / "specs" / "cpu-report.yaml").read_text()


def measure(aws: SeparateEmbeddedAws) -> list[Figure]:
    plane = ControlPlane(aws, scenario=Scenario(seconds={"queued": 1, "starting": 1, "running": 1}))
    with _quiet(), plane.running():
        events = _subscribe(aws, plane.stack.outputs["EventsTopicArn"])
        told: list[float] = []
        names = []
        for index in range(DROPS):
            name = f"latency-{index}"
            body = SPEC.replace("name: nightly-report", f"name: {name}").replace("on: [failed]", "on: [succeeded]")
            dropped = time.time()
            aws.client("s3").put_object(Bucket=plane.bucket, Key=f"incoming/forecasting/latency/{name}.yaml", Body=body)
            told.append(_submitted_event(aws, events, name) - dropped)
            names.append(name)
        slack = _slack_after_job_end(plane, names)
    return [
        Figure(
            f"idle stack: drop to its run.submitted event, p50 of {DROPS}",
            statistics.median(told),
            "s",
            detail=f"p99 (the slowest) {max(told):.2f} s; upload → S3 notification → submit → stream → publish → SNS",
        ),
        Figure(
            f"a Batch job's end to its Slack message, p50 of {len(slack)}",
            statistics.median(slack) if slack else float("nan"),
            "s",
            detail=f"p99 (the slowest) {max(slack, default=float('nan')):.2f} s; EventBridge → tracking queue → track"
            " → stream → publish → SNS → notify → Slack",
        ),
    ]


@contextmanager
def _quiet() -> Iterator[None]:
    """The functions' logs (their processes inherit this one's stdout) kept off the figures."""
    sys.stdout.flush()
    saved = os.dup(1)
    with Path(os.devnull).open("w") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _subscribe(aws: SeparateEmbeddedAws, topic: str) -> str:
    sqs = aws.client("sqs")
    url: str = sqs.create_queue(QueueName="bench-latency-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return url


def _submitted_event(aws: SeparateEmbeddedAws, url: str, name: str, timeout: float = 60) -> float:
    """When the run.submitted event of the spec called `name` reached the topic's subscriber."""
    sqs = aws.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event: dict[str, Any] = json.loads(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if event.get("type") == "run.submitted" and name in message["Body"]:
                return time.time()
    raise TimeoutError(f"no run.submitted event for {name} within {timeout} s")


def _slack_after_job_end(plane: ControlPlane, names: list[str], timeout: float = 90) -> list[float]:
    """For each run, seconds from its job's end (Batch's stoppedAt) to the first Slack message after it."""
    deadline = time.monotonic() + timeout
    latencies: dict[str, float] = {}
    while time.monotonic() < deadline and len(latencies) < len(names):
        time.sleep(0.5)
        for name in names:
            if name in latencies:
                continue
            ended = _job_end(plane, name)
            if ended is None:
                continue
            posted = [
                message.time.timestamp()
                for message in list(plane.slack.received)
                if name in json.dumps(message.payload) and message.time.timestamp() >= ended
            ]
            if posted:
                latencies[name] = min(posted) - ended
    return list(latencies.values())


def _job_end(plane: ControlPlane, name: str) -> float | None:
    key = f"incoming/forecasting/latency/{name}.yaml"
    for run in plane.table.runs_of_source(plane.bucket, key, limit=1):
        if run.jobs:
            job = plane.table.get_job(run.jobs[0].job_id)
            if job is not None and job.finished_at is not None:
                return job.finished_at.timestamp()
    return None
