"""The notify function end to end: SNS event -> handler -> secret, table, platform config -> Slack.

The handler runs as Lambda would run it (its module imported with its
environment, a cold start per test) against the emulator over HTTP: the
webhook secret in Secrets Manager, the records table and the platform config
come from the stack `template.yaml` deploys. Slack is a real HTTP server on
127.0.0.1 standing in for the incoming-webhook endpoint: it records each
request and answers as the test scripts it (200, 429 with Retry-After, 500).
slack-sdk's own WebhookClient talks to it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.emulator import EmbeddedAws
from batchdrop_local.local_stack import create_stack
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.stack_model import LocalFunction, Stack

from batchdrop.events.contract import JobStatusChanged, RunRejected
from batchdrop.notify.notifier import NotificationFailed, read_event
from batchdrop.notify.posted_log import marker_key
from batchdrop.notify.slack_blocks import NotifiableEvent, render
from batchdrop.notify.slack_webhooks import MAX_RETRIES
from tests.conftest import load_event
from tests.integration.conftest import FakeSlack, Reply

pytestmark = pytest.mark.integration

SECRET_NAME = "batchdrop/slack-webhooks"


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every line batchdrop logs during the test, as the function's Powertools handler formats it.

    Read from the logger, not stdout: Powertools binds its handler to the stdout of the first cold start.
    """
    lines: list[str] = []
    package = logging.getLogger("batchdrop")

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            formatter = next((handler.formatter for handler in package.handlers if handler.formatter), None)
            lines.append((formatter or logging.Formatter()).format(record))

    handler = Collect()
    package.addHandler(handler)
    yield lines
    package.removeHandler(handler)


# ---------------------------------------------------------------- the notify function in the local stack


@dataclass
class NotifyFunction:
    aws: EmbeddedAws
    stack: Stack
    function: LocalFunction
    module: ModuleType

    def __call__(self, event: dict[str, Any]) -> Any:
        return invoke(self.function, self.module, event)

    def marker(self, event_id: str) -> dict[str, Any] | None:
        table = self.stack.outputs["RecordsTableName"]
        item = self.aws.client("dynamodb").get_item(TableName=table, Key=marker_key(event_id)).get("Item")
        return dict(item) if item else None


@pytest.fixture
def notify(aws: EmbeddedAws, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> NotifyFunction:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)  # slack-sdk would send loopback requests through a proxy
    stack = create_stack(aws)
    webhooks = {"#vision-ml": slack.url("vision"), "platform": slack.url("platform")}  # forecasting has none
    aws.client("secretsmanager").put_secret_value(
        SecretId=stack.outputs["SlackWebhooksSecretArn"], SecretString=json.dumps(webhooks)
    )  # what an operator does after deploying (docs/notifications.md)
    function = stack.functions["NotifyFunction"]
    for name, value in function.environment.items():
        monkeypatch.setenv(name, value)  # load_handler sets them for the import; undone after the test
    return NotifyFunction(aws, stack, function, load_handler(function))


def sns_event(example: str, **changes: Any) -> tuple[dict[str, Any], NotifiableEvent]:
    """The committed SNS event, carrying the committed message with these changes (attributes to match)."""
    envelope = load_event(f"notify/{example}")
    sns = envelope["Records"][0]["Sns"]
    event = read_event(sns["Message"])
    assert event is not None
    event = event.model_copy(update=changes)
    sns["Message"] = event.body()
    sns["MessageAttributes"] = {name: {"Type": "String", "Value": value} for name, value in event.attributes().items()}
    return envelope, event


Invoke = Callable[[dict[str, Any]], Any]


# ---------------------------------------------------------------- the tests


def test_messages_arrive_in_the_teams_channel_with_their_blocks(notify: NotifyFunction, slack: FakeSlack) -> None:
    failed, failed_event = sns_event("sns-job-failed.json")
    rejected, rejected_event = sns_event("sns-run-rejected.json")

    assert notify(failed) == {"posted": 1, "skipped": 0}
    assert notify(rejected) == {"posted": 1, "skipped": 0}

    vision = slack.url("vision").removeprefix(slack.url("vision").split("/services/")[0])
    assert slack.paths() == [vision, vision], "vision's channel, #vision-ml, found through the platform config"
    first, second = slack.received
    assert first.content_type.startswith("application/json")
    assert first.body == render(failed_event).payload()
    assert second.body == render(rejected_event).payload()
    assert first.body["blocks"][0]["text"]["text"] == "❌ Failed: resnet-sweep / prep"
    assert first.body["text"].startswith("❌ Failed: resnet-sweep / prep — Out of memory (exit code 137)")
    assert isinstance(failed_event, JobStatusChanged)
    assert all(link.url in json.dumps(first.body["blocks"]) for link in failed_event.log_links)
    assert isinstance(rejected_event, RunRejected)
    assert "*line 4, column 45* · `resources.gpu`" in json.dumps(second.body["blocks"], ensure_ascii=False)
    marker = notify.marker(failed_event.event_id)
    assert marker is not None
    assert marker["state"] == {"S": "posted"}


def test_a_429_is_retried_after_retry_after_and_then_delivered(notify: NotifyFunction, slack: FakeSlack) -> None:
    event, _ = sns_event("sns-job-failed.json")
    slack.answer(Reply(429, "rate_limited", {"Retry-After": "1"}), Reply(200))

    assert notify(event) == {"posted": 1, "skipped": 0}

    assert len(slack.received) == 2
    throttled, delivered = slack.received
    assert delivered.body == throttled.body
    assert delivered.at - throttled.at >= 1.0, "Slack's Retry-After is honoured"


def test_slack_answering_500_ends_on_the_failure_path_and_a_retry_can_post(
    notify: NotifyFunction, slack: FakeSlack, capsys: pytest.CaptureFixture[str], logged: list[str]
) -> None:
    event, parsed = sns_event("sns-job-failed.json")
    slack.answer(*[Reply(500, "rollup_error")] * (1 + MAX_RETRIES))

    with pytest.raises(NotificationFailed, match="HTTP 500 rollup_error"):
        notify(event)

    assert len(slack.received) == 1 + MAX_RETRIES, "a 500 is retried a bounded number of times"
    assert notify.marker(parsed.event_id) is None, "no marker remains, so Lambda's retry may post"
    assert any('"http_status":500' in line for line in logged), "the failure is logged, with Slack's answer"
    assert all("token" not in line for line in logged), "webhook URLs never reach the logs"
    assert '"SlackFailures"' in capsys.readouterr().out, "the failure is counted (EMF)"

    assert notify(event) == {"posted": 1, "skipped": 0}, "Lambda's retry, once Slack is back"
    assert len(slack.received) == 2 + MAX_RETRIES


def test_a_duplicate_sns_delivery_posts_once(notify: NotifyFunction, slack: FakeSlack) -> None:
    event, _ = sns_event("sns-run-rejected.json")

    assert notify(event) == {"posted": 1, "skipped": 0}
    assert notify(event) == {"posted": 0, "skipped": 1}

    assert len(slack.received) == 1


def test_a_team_without_a_webhook_is_skipped_without_error(
    notify: NotifyFunction, slack: FakeSlack, logged: list[str]
) -> None:
    event, parsed = sns_event("sns-run-rejected.json", team="forecasting", event_id="f" * 32)

    assert notify(event) == {"posted": 0, "skipped": 1}

    assert slack.received == []
    assert notify.marker(parsed.event_id) is None
    (skipped,) = [json.loads(line) for line in logged if "no Slack webhook" in line]
    assert (skipped["level"], skipped["team"], skipped["event_id"]) == ("INFO", "forecasting", "f" * 32)
