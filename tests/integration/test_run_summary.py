"""A run's Slack messages through the whole local stack: submit -> Batch's events -> track -> the
records table's stream -> publish -> SNS -> notify -> Slack.

Specs are submitted for real by the submit function; Batch's events for their jobs are made with the
shape of the committed samples and handed to the track function as SQS batches; what the publish
function tells is read off the events topic and handed, one SNS delivery each, to the notify function,
which posts to a real HTTP server on 127.0.0.1 standing in for Slack's incoming webhook.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import as_batch_shows_it, attempt, in_sqs, state_change

from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import JobRecord, RunRecord, SpecSource
from tests.conftest import EXAMPLES, load_event
from tests.integration.conftest import FakeSlack, LocalStack

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)
Invoke = Callable[[dict[str, Any]], Any]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Plane:
    """The submit, track and notify functions of one local stack, and Slack's stand-in."""

    def __init__(self, stack: LocalStack, slack: FakeSlack) -> None:
        self.stack = stack
        self.slack = slack
        self._modules: dict[str, ModuleType] = {}

    def call(self, name: str, event: dict[str, Any]) -> Any:
        function = self.stack.stack.functions[name]
        if name not in self._modules:
            self._modules[name] = load_handler(function)
        return invoke(function, self._modules[name], event)

    def submit(self, spec: str, team: str = "vision") -> tuple[RunRecord, dict[str, JobRecord], dict[str, Any]]:
        """The run, its job records by step, and each job as Batch shows it (what its events carry)."""
        upload = self.stack.upload(f"incoming/{team}/{spec}", (EXAMPLES / "specs" / spec).read_bytes())
        assert self.call("SubmitFunction", self.stack.s3_event(upload)) == {"batchItemFailures": []}
        run_id = self._modules["SubmitFunction"].Submitter.run_id(
            SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id)
        )
        table = RecordQueries(self.stack.client("dynamodb"), self.stack.table)
        run = table.get_run(run_id)
        assert run is not None
        records = table.get_jobs(job.job_id for job in run.jobs)
        described = {
            job["jobId"]: job
            for job in self.stack.client("batch").describe_jobs(jobs=[job.job_id for job in run.jobs])["jobs"]
        }
        batch = {
            job.step: as_batch_shows_it(described[job.job_id], records[job.job_id].resources.model_dump())
            for job in run.jobs
        }
        return run, {job.step: records[job.job_id] for job in run.jobs}, batch

    def track(self, *events: dict[str, Any]) -> None:
        for event in events:
            assert self.call("TrackFunction", in_sqs(event)) == {"batchItemFailures": []}

    def notify_everything_told(self) -> list[dict[str, Any]]:
        """Hand every event the publish function told (so far) to the notify function: the bodies."""
        told = self.stack.published_events()
        for event in told:
            envelope = load_event("notify/sns-job-failed.json")
            sns = envelope["Records"][0]["Sns"]
            sns["Message"] = json.dumps(event["body"])
            sns["MessageAttributes"] = {
                name: {"Type": "String", "Value": value} for name, value in event["attributes"].items()
            }
            self.call("NotifyFunction", envelope)
        return [event["body"] for event in told]

    def headers(self) -> list[str]:
        return [request.body["blocks"][0]["text"]["text"] for request in self.slack.received]


@pytest.fixture
def plane(local_stack: LocalStack, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> Plane:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)  # slack-sdk would send loopback requests through a proxy
    local_stack.client("secretsmanager").put_secret_value(
        SecretId=local_stack.stack.outputs["SlackWebhooksSecretArn"],
        SecretString=json.dumps({"#vision-ml": slack.url("vision")}),
    )
    for name, value in local_stack.stack.functions["NotifyFunction"].environment.items():
        monkeypatch.setenv(name, value)
    return Plane(local_stack, slack)


def ran(job: dict[str, Any], *, start: float, end: float, fail: bool = False) -> list[dict[str, Any]]:
    """A plain job's RUNNING and its end, as Batch sends them."""
    last = attempt(job, 1, started=at(start), stopped=at(end), exit_code=1 if fail else 0)
    return [
        state_change(job, "RUNNING", at=at(start)),
        state_change(job, "FAILED" if fail else "SUCCEEDED", at=at(end), attempts=[last], exit_code=1 if fail else 0),
    ]


def array_ended(job: dict[str, Any], *, end: float, summary: dict[str, int]) -> dict[str, Any]:
    size = sum(summary.values())
    return state_change({**job, "arrayProperties": {"size": size, "statusSummary": summary}}, "SUCCEEDED", at=at(end))


def test_a_pipeline_that_succeeds_posts_one_summary_and_no_message_per_step(plane: Plane) -> None:
    run, _, batch = plane.submit("resnet-pipeline.yaml")  # notify: {on: [failed, succeeded, stuck]}
    plane.track(*ran(batch["prep"], start=1, end=5))
    plane.track(array_ended(batch["train"], end=65, summary={"SUCCEEDED": 4}))
    plane.track(*ran(batch["evaluate"], start=66, end=70))
    told = plane.notify_everything_told()

    (ended,) = [event for event in told if event["type"] == "run.ended"]
    assert ended["status"] == "succeeded"
    assert [(step["step"], step["status"]) for step in ended["steps"]] == [
        ("prep", "succeeded"),
        ("train", "succeeded"),
        ("evaluate", "succeeded"),
    ]
    assert ended["steps"][1]["children"] == {"SUCCEEDED": 4}
    assert ended["steps"][0]["duration_seconds"] == pytest.approx(240.0)
    assert [e["step"] for e in told if e["type"] == "job.status"] == ["prep", "train", "evaluate"], (
        "every step's success is still published for subscribers"
    )

    assert plane.headers() == ["✅ Run succeeded: resnet-sweep"], "one message for the run, none per step"
    summary = json.dumps(plane.slack.received[0].body["blocks"], ensure_ascii=False)
    assert "`prep`" in summary
    assert "✅ 4 succeeded" in summary
    assert run.run_id in summary


def test_a_pipeline_that_fails_posts_the_failure_and_the_summary(plane: Plane) -> None:
    _, _, batch = plane.submit("resnet-pipeline.yaml")
    plane.track(*ran(batch["prep"], start=1, end=5, fail=True))
    told = plane.notify_everything_told()

    (ended,) = [event for event in told if event["type"] == "run.ended"]
    assert ended["status"] == "failed"
    assert [(step["step"], step.get("failure_class")) for step in ended["steps"]] == [
        ("prep", "non_zero_exit"),
        ("train", "dependency"),
        ("evaluate", "dependency"),
    ]
    assert plane.headers() == ["❌ Failed: resnet-sweep / prep", "❌ Run failed: resnet-sweep"], (
        "the failed step with its logs, then the run; the steps that never ran are in the summary"
    )
    failure = json.dumps(plane.slack.received[0].body["blocks"], ensure_ascii=False)
    assert "Logs" in failure
    summary = json.dumps(plane.slack.received[1].body["blocks"], ensure_ascii=False)
    assert "upstream step `prep` failed" in summary


def test_a_single_job_keeps_its_own_messages_and_gets_no_second_summary(plane: Plane) -> None:
    _, _, batch = plane.submit("gpu-finetune.yaml")  # notify: {on: [running, succeeded, failed, stuck]}
    plane.track(*ran(batch["main"], start=1, end=61))
    told = plane.notify_everything_told()
    assert [event["type"] for event in told if event["type"] == "run.ended"] == ["run.ended"], "still published"
    assert [header.split(":")[0] for header in plane.headers()] == ["🏃 Running", "✅ Succeeded"]


def test_a_job_running_again_after_a_spot_reclaim_tells_what_became_of_attempt_one(plane: Plane) -> None:
    _, _, batch = plane.submit("gpu-finetune.yaml")
    job = batch["main"]
    reclaimed = attempt(
        job, 1, started=at(4), stopped=at(10), exit_code=None, status_reason="Host EC2 (instance i-0abc) terminated."
    )
    plane.track(
        state_change(job, "RUNNING", at=at(4)),
        state_change(job, "RUNNABLE", at=at(11), attempts=[reclaimed]),
        state_change(job, "RUNNING", at=at(13), attempts=[reclaimed]),
    )
    told = plane.notify_everything_told()
    running = [event for event in told if event["type"] == "job.status"]
    assert [event["attempts"] for event in running] == [1, 2], "the attempt in progress"
    assert running[1]["attempt_history"][0]["failure_class"] == "spot_reclaim"
    assert "duration_seconds" not in running[1]

    first, second = (request.body for request in plane.slack.received)
    text = json.dumps(second["blocks"], ensure_ascii=False)
    assert "*Attempt 2* — attempt 1 was reclaimed" in text
    assert "(Host EC2 (instance i-0abc) terminated)" in text
    assert "Ran for" not in text, "no earlier attempt's run time shown as this one's"
    assert "attempt 1 was reclaimed" in second["text"]
    assert "reclaimed" not in json.dumps(first["blocks"])
