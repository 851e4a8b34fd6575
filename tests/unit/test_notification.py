"""The Notifier: what is posted, where, once; what happens when Slack or AWS misbehaves.

AWS is moto in-process (`mock_aws`: no sockets) for the secret and the table;
Slack is a stand-in for slack-sdk's webhook client that records each post and
answers as told. The real client, over HTTP, is in tests/integration/test_notify.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.error import URLError

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from pydantic import ValidationError
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient, WebhookResponse

from batchdrop.events.contract import (
    JobRecovering,
    JobStatusChanged,
    JobStuck,
    RecoveryTold,
    RunEnded,
    RunRejected,
    RunStep,
    RunSubmitted,
)
from batchdrop.notify.notifier import (
    Delivery,
    NotificationFailed,
    NotificationInProgress,
    Notifier,
    is_wanted,
    read_event,
)
from batchdrop.notify.posted_log import NotificationLog, NotificationLogUnavailable, marker_key
from batchdrop.notify.slack_blocks import NotifiableEvent, render
from batchdrop.notify.slack_webhooks import (
    MAX_RETRY_AFTER_SECONDS,
    SlackPoster,
    Webhook,
    WebhookSender,
    _BoundedRateLimitRetryHandler,
    webhook_client,
)
from batchdrop.wiring.notify import build_notifier
from batchdrop.wiring.settings import NotifySettings, SettingsInvalid, load_settings
from tests.conftest import EXAMPLES, load_event
from tests.recordkit import create_records_table

TABLE = "batchdrop-records"
SECRET = "batchdrop/slack-webhooks"
VISION_URL = "https://hooks.slack.com/services/T0VISION/B0VISION/vision-secret-path"
CHANNEL_URL = "https://hooks.slack.com/services/T0VISION/B0CHANNEL/channel-secret-path"


def sns_message(name: str) -> str:
    return str(load_event(f"notify/{name}")["Records"][0]["Sns"]["Message"])


def job_failed(**changes: Any) -> JobStatusChanged:
    event = read_event(sns_message("sns-job-failed.json"))
    assert isinstance(event, JobStatusChanged)
    return event.model_copy(update=changes)


def job_recovering(**changes: Any) -> JobRecovering:
    """The recovery started for the failed job of `sns-job-failed.json`."""
    failed = job_failed()
    recovery = RecoveryTold(
        number=1,
        kind="out_of_memory",
        words="ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)",
        job_id=failed.job_id,
        memory_mib=32768,
        queue=failed.queue,
    )
    fields = failed.model_dump(exclude={"type", "status", "usage", "duration_seconds", "recovering"})
    return JobRecovering(**{**fields, "memory_mib": 16384, "recovery": recovery, "number_of": 2, **changes})


def run_rejected(**changes: Any) -> RunRejected:
    event = read_event(sns_message("sns-run-rejected.json"))
    assert isinstance(event, RunRejected)
    return event.model_copy(update=changes)


def run_submitted(notify_on: list[str]) -> RunSubmitted:
    rejected = run_rejected()
    return RunSubmitted(
        **rejected.model_dump(include={"event_id", "time", "team", "environment", "run_id", "spec_name", "source_uri"}),
        jobs=[],
        receipt_uri="s3://b/receipts/vision/x.yaml.json",
        notify_on=notify_on,
    )


def run_ended(status: str, steps: list[str], notify_on: list[str]) -> RunEnded:
    rejected = run_rejected()
    return RunEnded(
        **rejected.model_dump(include={"event_id", "time", "team", "environment", "run_id", "spec_name", "source_uri"}),
        status=status,  # type: ignore[arg-type]
        steps=[
            RunStep(step=name, job_id=f"job-{name}", status="succeeded", queue="cpu-shared", hardware="cpu")
            for name in steps
        ],
        step_count=len(steps),
        notify_on=notify_on,
    )


def recovered(event: RunEnded) -> RunEnded:
    """The run's last step recovered once."""
    recovery = RecoveryTold(
        number=1, kind="out_of_memory", words="ran out of memory", job_id="job-old", memory_mib=8192, queue="cpu-shared"
    )
    last = event.steps[-1].model_copy(update={"recoveries": [recovery], "story": "attempt 1: … → succeeded"})
    return event.model_copy(update={"steps": [*event.steps[:-1], last]})


def job_stuck() -> JobStuck:
    failed = job_failed()
    return JobStuck(
        **failed.model_dump(
            include={"event_id", "time", "team", "run_id", "source_uri", "job_id", "job_name", "step", "queue"}
            | {"hardware", "console_url"}
        ),
        runnable_seconds=3600,
        advice="ask for less memory",
    )


# ---------------------------------------------------------------- the stand-in for Slack


@dataclass
class FakeSlack:
    """Records every post; answers from `replies` (status, body), then 200 `ok`. Status 0: no answer."""

    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    replies: deque[tuple[int, str]] = field(default_factory=deque)

    def client(self, url: str) -> WebhookSender:
        return FakeWebhookClient(self, url)


@dataclass
class FakeWebhookClient:
    slack: FakeSlack
    url: str

    def send_dict(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> WebhookResponse:
        self.slack.posts.append((self.url, body))
        status, text = self.slack.replies.popleft() if self.slack.replies else (200, "ok")
        if status == 0:
            raise URLError(ConnectionRefusedError(111, "Connection refused"))
        return WebhookResponse(url=self.url, status_code=status, body=text, headers={})


@dataclass
class World:
    session: boto3.Session
    slack: FakeSlack
    notifier: Notifier

    def put_secret(self, value: str | dict[str, str]) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        self.session.client("secretsmanager").put_secret_value(SecretId=SECRET, SecretString=text)

    def marker(self, event_id: str) -> dict[str, Any] | None:
        item = self.session.client("dynamodb").get_item(TableName=TABLE, Key=marker_key(event_id)).get("Item")
        return dict(item) if item else None


@pytest.fixture
def logs() -> Iterator[list[logging.LogRecord]]:
    """What batchdrop logged (its own handler: other tests may have stopped propagation to the root)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, package = Collect(level=logging.DEBUG), logging.getLogger("batchdrop")
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.DEBUG)
    yield records
    package.removeHandler(handler)
    package.setLevel(level)


def make_world(webhooks: dict[str, str]) -> Iterator[World]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        create_records_table(session.client("dynamodb"), TABLE)
        session.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps(webhooks))
        settings = load_settings(
            NotifySettings,
            {
                "TABLE_NAME": TABLE,
                "SLACK_WEBHOOKS_SECRET_ARN": SECRET,
                "BATCHDROP_PLATFORM_CONFIG": str(EXAMPLES / "platform.yaml"),
            },
        )
        slack = FakeSlack()
        yield World(session, slack, build_notifier(settings, session, webhook_client_factory=slack.client))


@pytest.fixture
def world() -> Iterator[World]:
    yield from make_world({"vision": VISION_URL})


@pytest.fixture
def channel_world() -> Iterator[World]:
    yield from make_world({"#vision-ml": CHANNEL_URL, "platform": "https://hooks.slack.com/services/T/B/other"})


# ---------------------------------------------------------------- what is posted


@pytest.mark.parametrize(
    ("event", "wanted"),
    [
        (run_rejected(), True),
        (job_stuck(), True),
        (run_submitted([]), False),
        (run_submitted(["failed", "succeeded"]), False),
        (run_submitted(["submitted"]), True),
        (job_failed(notify_on=[]), True),
        (job_failed(status="lost", notify_on=[]), True),
        (job_failed(status="succeeded", step="main", notify_on=[]), False),
        (job_failed(status="succeeded", step="main", notify_on=["failed", "succeeded"]), True),
        (job_failed(status="succeeded", step="main", notify_on=["SUCCEEDED"]), True),
        (job_failed(status="succeeded", step="main", array_size=10, notify_on=["succeeded"]), True),
        (job_failed(status="running", notify_on=["failed", "succeeded", "stuck"]), False),
        (job_failed(status="running", notify_on=["running"]), True),
        # a pipeline's step: its success is told by the run's summary; its failures and asked-for statuses stay
        (job_failed(status="succeeded", step="prep", notify_on=["succeeded"]), False),
        (job_failed(status="succeeded", step="prep", array_size=10, notify_on=["succeeded"]), False),
        (job_failed(status="failed", step="prep", notify_on=[]), True),
        (job_failed(status="failed", step="evaluate", failure_class="dependency", notify_on=[]), False),
        (job_failed(status="failed", step="main", failure_class="dependency", notify_on=[]), True),
        # the run's step count, where the job's record keeps it, decides; the step's name is for older records
        (job_failed(status="succeeded", step="train", step_count=1, notify_on=["succeeded"]), True),
        (job_failed(status="succeeded", step="main", step_count=3, notify_on=["succeeded"]), False),
        (run_ended("succeeded", ["train"], ["succeeded"]), False),
        # one summary for a pipeline: failures always, success when asked; never for a single job
        (run_ended("succeeded", ["prep", "train"], ["succeeded"]), True),
        (run_ended("succeeded", ["prep", "train"], ["failed"]), False),
        (run_ended("failed", ["prep", "train"], []), True),
        (run_ended("cancelled", ["prep", "train"], []), True),
        (run_ended("succeeded", ["main"], ["succeeded"]), False),
        (run_ended("failed", ["main"], []), False),
        # a run with a recovered step always ends in its summary: `job.recovering` promised how it ends
        (recovered(run_ended("succeeded", ["main"], [])), True),
        (recovered(run_ended("failed", ["main"], [])), True),
        (recovered(run_ended("succeeded", ["prep", "train"], [])), True),
        # a recovery started is always told, in place of the failure it answers
        (job_recovering(notify_on=[]), True),
        (job_recovering(step="prep", step_count=3, notify_on=[]), True),
        (job_failed(recovering=True, notify_on=[]), False),
        (job_failed(recovering=True, step="prep", step_count=3, notify_on=["failed"]), False),
    ],
    ids=lambda value: (
        value
        if isinstance(value, bool)
        else f"{value.type}:{value.status}:{'+'.join(step.step for step in value.steps)}:{value.notify_on}"
        if isinstance(value, RunEnded)
        else f"{value.type}:{value.status}:{getattr(value, 'step', '')}:{value.notify_on}"
        if hasattr(value, "notify_on")
        else f"{value.type}"
    ),
)
def test_only_what_the_spec_asked_for_plus_failures_rejections_and_stuck_jobs(
    event: NotifiableEvent, wanted: bool
) -> None:
    assert is_wanted(event) is wanted


def test_a_failed_job_is_posted_to_its_teams_webhook_as_block_kit(world: World) -> None:
    event = job_failed()
    delivery = world.notifier.notify(event)
    assert delivery == Delivery(outcome="posted", team="vision", event_type="job.status")
    ((url, body),) = world.slack.posts
    assert url == VISION_URL
    assert body == render(event).payload()
    assert body["text"].startswith("❌ Failed: resnet-sweep / prep — Out of memory (exit code 137)")


def test_a_duplicate_delivery_is_posted_once(world: World) -> None:
    event = job_failed()
    first, second = world.notifier.notify(event), world.notifier.notify(event)
    assert (first.outcome, second.outcome, second.reason) == ("posted", "skipped", "duplicate")
    assert len(world.slack.posts) == 1
    marker = world.marker(event.event_id)
    assert marker is not None
    assert marker["state"] == {"S": "posted"}
    fourteen_days = 14 * 24 * 3600
    assert abs(int(marker["expires_at"]["N"]) - (time.time() + fourteen_days)) < 60


def test_a_teams_channel_from_the_platform_config_finds_its_webhook(channel_world: World) -> None:
    assert channel_world.notifier.notify(job_failed()).outcome == "posted"
    assert [url for url, _ in channel_world.slack.posts] == [CHANNEL_URL]


def test_a_channel_key_may_leave_out_the_hash(world: World) -> None:
    world.put_secret({"vision-ml": CHANNEL_URL})
    world.notifier.webhooks.refresh()
    assert world.notifier.notify(job_failed()).outcome == "posted"
    assert [url for url, _ in world.slack.posts] == [CHANNEL_URL]


@pytest.mark.parametrize("team", ["forecasting", "no-such-team"])
def test_a_team_without_a_webhook_is_skipped_with_a_log_line(
    world: World, logs: list[logging.LogRecord], team: str
) -> None:
    event = run_rejected(team=team)
    delivery = world.notifier.notify(event)
    assert (delivery.outcome, delivery.reason, delivery.team) == ("skipped", "no_webhook", team)
    assert world.slack.posts == []
    assert world.marker(event.event_id) is None, "nothing is claimed for a skipped event"
    (line,) = [record for record in logs if record.getMessage().startswith("no Slack webhook")]
    assert line.levelno == logging.INFO
    assert line.__dict__["team"] == team
    assert line.__dict__["event_id"] == event.event_id


def test_an_event_not_asked_for_is_neither_posted_nor_claimed(world: World) -> None:
    event = job_failed(status="succeeded", notify_on=["failed"])
    delivery = world.notifier.notify(event)
    assert (delivery.outcome, delivery.reason) == ("skipped", "not_requested")
    assert world.slack.posts == []
    assert world.marker(event.event_id) is None


# ---------------------------------------------------------------- when Slack fails


def test_a_refused_post_releases_its_claim_and_raises_so_a_retry_posts(
    world: World, logs: list[logging.LogRecord]
) -> None:
    event = job_failed()
    world.slack.replies.append((500, "rollup_error"))
    with pytest.raises(NotificationFailed, match=r"HTTP 500 rollup_error") as raised:
        world.notifier.notify(event)
    assert raised.value.__cause__ is not None, "raised from Slack's failure"
    assert world.marker(event.event_id) is None, "the claim is given back"
    assert world.notifier.notify(event).outcome == "posted", "Lambda's retry posts it"
    assert len(world.slack.posts) == 2
    warning = next(record for record in logs if record.getMessage() == "Slack did not take the message")
    assert (warning.__dict__["http_status"], warning.__dict__["slack_error"]) == (500, "rollup_error")


def test_no_answer_from_slack_fails_without_naming_the_url(world: World, logs: list[logging.LogRecord]) -> None:
    world.slack.replies.append((0, ""))
    with pytest.raises(NotificationFailed) as raised:
        world.notifier.notify(job_failed())
    assert "URLError" in str(raised.value)
    assert "hooks.slack.com" not in str(raised.value)
    assert all("hooks.slack.com" not in json.dumps(record.__dict__, default=str) for record in logs)


def test_a_revoked_webhook_is_read_again_from_the_secret_on_the_retry(world: World) -> None:
    world.slack.replies.append((404, "no_service"))
    with pytest.raises(NotificationFailed, match="no_service"):
        world.notifier.notify(job_failed())
    world.put_secret({"vision": CHANNEL_URL})  # the team put in a new webhook
    assert world.notifier.notify(job_failed()).outcome == "posted"
    assert [url for url, _ in world.slack.posts] == [VISION_URL, CHANNEL_URL]


def test_an_event_being_posted_elsewhere_is_retried_later_not_dropped(world: World) -> None:
    event = job_failed()
    log = world.notifier.log
    claim = log.claim(event.event_id)  # another invocation, posting right now
    assert claim.outcome == "claimed"
    with pytest.raises(NotificationInProgress):
        world.notifier.notify(event)
    assert world.slack.posts == []


def test_a_claim_abandoned_by_a_dead_invocation_is_taken_over(world: World) -> None:
    event = job_failed()
    log = world.notifier.log
    log.clock = lambda: time.time() - log.stale_after.total_seconds() - 1
    log.claim(event.event_id)  # its invocation timed out before posting
    log.clock = time.time
    assert world.notifier.notify(event).outcome == "posted"
    assert len(world.slack.posts) == 1


def test_a_post_that_cannot_be_recorded_still_counts_as_posted(
    world: World, logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: Any) -> None:
        raise NotificationLogUnavailable("throttled")

    monkeypatch.setattr(world.notifier.log, "confirm", unavailable)
    assert world.notifier.notify(job_failed()).outcome == "posted", "a retry would only post it again"
    assert any(record.getMessage().startswith("posted, but") for record in logs)


# ---------------------------------------------------------------- the webhook secret


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ({"vision": "hooks.slack.com/services/T/B/SECRETPATH", "ok": VISION_URL}, "these entries are not: vision"),
        ({"vision": "http://hooks.slack.com/services/T/B/SECRETPATH"}, "these entries are not: vision"),
        ('["https://hooks.slack.com/services/T/B/SECRETPATH"]', "(the whole secret)"),
        ("not json at all SECRETPATH", "cannot read the Slack webhook secret"),
    ],
)
def test_a_malformed_secret_fails_naming_keys_never_urls(world: World, secret: Any, words: str) -> None:
    world.put_secret(secret)
    world.notifier.webhooks.refresh()
    with pytest.raises(NotificationFailed) as raised:
        world.notifier.notify(job_failed())
    assert words in str(raised.value)
    assert "SECRETPATH" not in str(raised.value)
    assert "SECRETPATH" not in repr(raised.value.__cause__)


def test_a_missing_secret_fails_so_the_event_is_retried(world: World) -> None:
    world.session.client("secretsmanager").delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    world.notifier.webhooks.refresh()
    with pytest.raises(NotificationFailed, match="cannot read the Slack webhook secret"):
        world.notifier.notify(job_failed())


def test_the_secret_is_cached() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        client = session.client("secretsmanager")
        client.create_secret(Name=SECRET, SecretString=json.dumps({"vision": VISION_URL}))
        calls: list[str] = []
        client.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("get"))
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        from batchdrop.notify.slack_webhooks import WebhookDirectory
        from batchdrop.platform.source import PlatformConfigSource

        directory = WebhookDirectory(
            SecretsProvider(boto3_client=client), SECRET, PlatformConfigSource(str(EXAMPLES / "platform.yaml"))
        )
        assert [directory.webhook_for("vision") for _ in range(3)] == [Webhook(key="vision", url=VISION_URL)] * 3
        assert calls == ["get"]
        assert "hooks.slack.com" not in repr(directory.webhook_for("vision"))


# ---------------------------------------------------------------- the parts


def test_an_unknown_event_type_is_not_an_error_but_a_broken_known_one_is() -> None:
    body = json.loads(sns_message("sns-run-rejected.json"))
    assert read_event(json.dumps({**body, "type": "run.finished"})) is None
    with pytest.raises(ValidationError):
        read_event(json.dumps({**body, "problems": "not a list"}))


@pytest.mark.parametrize(
    ("status", "retry_after", "retried"),
    [
        (429, "1", True),
        (429, str(MAX_RETRY_AFTER_SECONDS), True),
        (429, "30", False),
        (429, None, True),
        (429, "soon", False),
        (500, None, False),
    ],
)
def test_a_429_is_retried_only_within_a_wait_the_invocation_can_afford(
    status: int, retry_after: str | None, retried: bool
) -> None:
    handler = _BoundedRateLimitRetryHandler(max_retry_count=2, max_wait_seconds=MAX_RETRY_AFTER_SECONDS)
    headers: dict[str, str | list[str]] = {"Retry-After": [retry_after]} if retry_after else {}
    response = HttpResponse(status_code=status, headers=headers)
    request = HttpRequest(method="POST", url="https://hooks.slack.com/x", headers={})
    assert handler.can_retry(state=RetryState(), request=request, response=response) is retried


def test_the_webhook_client_is_slack_sdks_with_bounded_retries_and_a_quiet_logger() -> None:
    client = webhook_client(VISION_URL)
    assert isinstance(client, WebhookClient)
    kinds = [type(handler).__name__ for handler in client.retry_handlers]
    assert kinds == ["_BoundedRateLimitRetryHandler", "ServerErrorRetryHandler", "ConnectionErrorRetryHandler"]
    assert all(handler.max_retry_count <= 2 for handler in client.retry_handlers)
    assert client.logger.level == logging.WARNING, "slack-sdk logs request URLs at debug and info"


def test_the_poster_reuses_one_client_per_webhook() -> None:
    slack = FakeSlack()
    made: list[str] = []

    def factory(url: str) -> WebhookSender:
        made.append(url)
        return slack.client(url)

    poster = SlackPoster(factory)
    message = render(job_failed())
    for _ in range(3):
        poster.post(Webhook(key="vision", url=VISION_URL), message)
    assert made == [VISION_URL]
    assert len(slack.posts) == 3


def test_the_notification_log_reports_dynamodb_trouble_as_its_own_error() -> None:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    log = NotificationLog(client, TABLE)
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", "ProvisionedThroughputExceededException", http_status_code=400)
        with pytest.raises(NotificationLogUnavailable, match="cannot claim event e-1"):
            log.claim("e-1")
        stubber.add_response("put_item", {})
        claim = log.claim("e-2")
        stubber.add_client_error("delete_item", "ConditionalCheckFailedException", http_status_code=400)
        log.release(claim)  # someone else's claim by now: left alone, not an error
        stubber.add_client_error("delete_item", "InternalServerError", http_status_code=500)
        with pytest.raises(NotificationLogUnavailable, match="cannot release event e-2"):
            log.release(claim)
        stubber.assert_no_pending_responses()


def test_notify_settings_name_what_is_missing_or_malformed() -> None:
    good = {"TABLE_NAME": TABLE, "SLACK_WEBHOOKS_SECRET_ARN": SECRET, "BATCHDROP_PLATFORM_CONFIG": "s3://b/k"}
    assert load_settings(NotifySettings, good).webhooks_cache_seconds == 300
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batchdrop/slack-webhooks-AbCdEf"
    assert load_settings(NotifySettings, {**good, "SLACK_WEBHOOKS_SECRET_ARN": arn}).webhooks_secret == arn
    with pytest.raises(SettingsInvalid, match="SLACK_WEBHOOKS_SECRET_ARN"):
        load_settings(NotifySettings, {**good, "SLACK_WEBHOOKS_SECRET_ARN": "https://hooks.slack.com/services/T/B/x"})
    with pytest.raises(SettingsInvalid, match="TABLE_NAME"):
        load_settings(NotifySettings, {key: value for key, value in good.items() if key != "TABLE_NAME"})


def test_an_unreadable_platform_config_fails_the_channel_lookup_so_the_event_is_retried(world: World) -> None:
    from batchdrop.platform.source import PlatformConfigSource

    world.put_secret({"#vision-ml": CHANNEL_URL})
    world.notifier.webhooks.refresh()
    world.notifier.webhooks.config = PlatformConfigSource("/nonexistent/platform.yaml")
    with pytest.raises(NotificationFailed, match="cannot find team vision's Slack channel"):
        world.notifier.notify(job_failed())
    assert world.slack.posts == []


def test_dynamodb_unavailable_when_claiming_fails_before_posting(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_: Any) -> None:
        raise NotificationLogUnavailable("cannot claim event: throttled")

    monkeypatch.setattr(world.notifier.log, "claim", unavailable)
    with pytest.raises(NotificationFailed, match="throttled"):
        world.notifier.notify(job_failed())
    assert world.slack.posts == []


def test_a_claim_that_cannot_be_released_is_logged_and_the_post_still_fails(
    world: World, logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: Any) -> None:
        raise NotificationLogUnavailable("cannot release")

    monkeypatch.setattr(world.notifier.log, "release", unavailable)
    world.slack.replies.append((503, "service_unavailable"))
    with pytest.raises(NotificationFailed, match="503"):
        world.notifier.notify(job_failed())
    assert any(record.getMessage().startswith("cannot release the claim") for record in logs)
