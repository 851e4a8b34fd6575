"""The notify function under faults: each event reaches Slack exactly once, and none is lost.

The notification log (a marker item per `event_id` in the records table) is
what keeps a post from being made twice; DynamoDB's faults are injected beneath
botocore's retry layer (tests/faults.py), so the copies botocore re-sends by
itself hit the log too. Slack is the loopback `FakeSlack` of conftest.py,
scripted to fail.

SNS invokes the function asynchronously: a failed invocation is retried by
Lambda twice (about a minute, then two minutes later) and then handed to the
on-failure destination. `deliver` plays that part, on a clock the test moves,
so "not lost" means: posted by one of those three invocations.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from batchdrop_local.emulator import EmbeddedAws
from batchdrop_local.local_stack import create_stack
from batchdrop_local.runtime import load_handler
from botocore.retries.standard import ExponentialBackoff

from batchdrop.notify.notifier import NotificationFailed
from batchdrop.notify.slack_webhooks import MAX_RETRIES
from tests.faults import FaultProxy
from tests.integration.conftest import FakeSlack, Reply
from tests.integration.test_notify import NotifyFunction, sns_event

LAMBDA_RETRY_DELAYS = (60.0, 120.0)
"""SNS invokes asynchronously: Lambda retries a failed invocation twice (MaximumRetryAttempts: 2)."""


@pytest.fixture
def notify_function(aws: EmbeddedAws, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> NotifyFunction:
    """The notify function in its own stack (as test_notify's `notify`), imported after `faults`:
    its DynamoDB, Secrets Manager and S3 clients go through the proxy."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    stack = create_stack(aws)
    webhooks = {"#vision-ml": slack.url("vision"), "platform": slack.url("platform")}
    aws.client("secretsmanager").put_secret_value(
        SecretId=stack.outputs["SlackWebhooksSecretArn"], SecretString=json.dumps(webhooks)
    )
    function = stack.functions["NotifyFunction"]
    for name, value in function.environment.items():
        monkeypatch.setenv(name, value)
    return NotifyFunction(aws, stack, function, load_handler(function))


@dataclass
class Clock:
    """The notification log's clock (epoch seconds), moved by the test as Lambda's retries pass."""

    now: float = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(notify_function: NotifyFunction, monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(notify_function.module.notifier.log, "clock", clock)
    return clock


@pytest.fixture
def instant_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's back-off after a throttle (a second or more) is not slept."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@dataclass
class Delivered:
    """What Lambda made of one asynchronous event: each invocation's result or error, in order."""

    outcomes: list[Any] = field(default_factory=list)

    @property
    def result(self) -> Any:
        return self.outcomes[-1]

    @property
    def to_on_failure_destination(self) -> bool:
        return isinstance(self.outcomes[-1], Exception)


def deliver(notify: NotifyFunction, event: dict[str, Any], clock: Clock) -> Delivered:
    """Invoke as SNS and Lambda do: once, then again after each retry delay while the invocation fails."""
    delivered = Delivered()
    for delay in (0.0, *LAMBDA_RETRY_DELAYS):
        clock.now += delay
        try:
            delivered.outcomes.append(notify(event))
            return delivered
        except NotificationFailed as failed:  # anything else is a bug, and fails the test
            delivered.outcomes.append(failed)
    return delivered


def posted_state(notify: NotifyFunction, event_id: str) -> str | None:
    marker = notify.marker(event_id)
    return marker["state"]["S"] if marker else None


# ---------------------------------------------------------------- the notification log under faults


@pytest.mark.parametrize("fault", ["fail_after", "drop", "throttle"])
@pytest.mark.usefixtures("instant_backoff")
def test_a_claim_the_table_applied_but_did_not_confirm_posts_the_event_once(
    faults: FaultProxy,
    notify_function: NotifyFunction,
    slack: FakeSlack,
    clock: Clock,
    fault: str,
) -> None:
    event, parsed = sns_event("sns-job-failed.json")
    # The claim (a conditional PutItem of the event's marker): applied then 500, applied then the
    # connection lost, or refused with a throttle. botocore re-sends it beneath the notification log.
    claim = faults.add("dynamodb", "PutItem", fault, body_contains=f"NOTIFIED#{parsed.event_id}")  # type: ignore[arg-type]

    delivered = deliver(notify_function, event, clock)

    assert claim.fired == 1
    assert faults.count("dynamodb", "PutItem") >= 3, "the claim, botocore's copy of it, the confirmation"
    assert not delivered.to_on_failure_destination, "posted by one of Lambda's invocations, not lost"
    assert delivered.result == {"posted": 1, "skipped": 0}
    assert len(slack.received) == 1, "posted once"
    assert posted_state(notify_function, parsed.event_id) == "posted"
    assert notify_function(event) == {"posted": 0, "skipped": 1}, "a later duplicate is recognised"
    assert len(slack.received) == 1


def test_a_confirmation_applied_then_answered_500_does_not_post_again(
    faults: FaultProxy, notify_function: NotifyFunction, slack: FakeSlack, clock: Clock
) -> None:
    event, parsed = sns_event("sns-run-rejected.json")
    confirm = faults.fail_after("dynamodb", "PutItem", body_contains='"posted"')  # the marker's second write

    assert deliver(notify_function, event, clock).outcomes == [{"posted": 1, "skipped": 0}]

    assert confirm.fired == 1
    assert posted_state(notify_function, parsed.event_id) == "posted", "botocore's copy wrote the same marker"
    assert deliver(notify_function, event, clock).outcomes == [{"posted": 0, "skipped": 1}]
    assert len(slack.received) == 1


def test_a_duplicate_of_an_event_whose_confirmation_the_table_never_took_is_not_posted_again(
    faults: FaultProxy, notify_function: NotifyFunction, slack: FakeSlack, clock: Clock
) -> None:
    event, parsed = sns_event("sns-job-failed.json")
    faults.fail_before("dynamodb", "PutItem", body_contains='"posted"', times=None)  # every attempt refused

    assert deliver(notify_function, event, clock).outcomes == [{"posted": 1, "skipped": 0}], "posted: not raised"
    assert posted_state(notify_function, parsed.event_id) == "posting", "the claim stands in for the confirmation"

    clock.now += 10  # SNS delivers the same event again, soon after
    deliver(notify_function, event, clock)

    assert len(slack.received) == 1, "the duplicate was not posted"


# ---------------------------------------------------------------- Slack under faults


def test_slack_answering_500_then_200_posts_once(
    faults: FaultProxy, notify_function: NotifyFunction, slack: FakeSlack, clock: Clock
) -> None:
    event, parsed = sns_event("sns-job-failed.json")
    slack.answer(Reply(500, "rollup_error"))

    assert deliver(notify_function, event, clock).outcomes == [{"posted": 1, "skipped": 0}]

    assert len(slack.received) == 2, "slack-sdk retried the 500 once, and Slack took it"
    assert slack.received[0].body == slack.received[1].body
    assert posted_state(notify_function, parsed.event_id) == "posted"


def test_slack_down_and_the_claim_not_released_delays_the_post_but_does_not_lose_it(
    faults: FaultProxy, notify_function: NotifyFunction, slack: FakeSlack, clock: Clock
) -> None:
    event, parsed = sns_event("sns-job-failed.json")
    slack.answer(*[Reply(500, "rollup_error")] * (1 + MAX_RETRIES))  # the first invocation's post fails
    release = faults.fail_before("dynamodb", "DeleteItem", times=None)  # and its claim cannot be given back

    delivered = deliver(notify_function, event, clock)

    assert release.fired >= 1
    assert not delivered.to_on_failure_destination, "a later invocation took the stale claim over and posted"
    assert delivered.result == {"posted": 1, "skipped": 0}
    assert len(slack.received) == 1 + MAX_RETRIES + 1, "the failed attempts, then one message"
    assert posted_state(notify_function, parsed.event_id) == "posted"


# ---------------------------------------------------------------- the same event, twice


def test_the_same_event_delivered_twice_at_once_is_posted_once(
    faults: FaultProxy, notify_function: NotifyFunction, slack: FakeSlack, clock: Clock
) -> None:
    event, parsed = sns_event("sns-job-failed.json")
    second = NotifyFunction(
        notify_function.aws, notify_function.stack, notify_function.function, load_handler(notify_function.function)
    )  # another instance of the function: Lambda runs the two deliveries side by side
    second.module.notifier.log.clock = clock
    faults.delay("dynamodb", "PutItem", seconds=0.3, times=2)  # both claims in flight together
    start = threading.Barrier(2)
    first_invocations: dict[int, Any] = {}

    def invoke(index: int, function: NotifyFunction) -> None:
        start.wait()
        try:
            first_invocations[index] = function(event)
        except NotificationFailed as failed:
            first_invocations[index] = failed

    threads = [threading.Thread(target=invoke, args=pair) for pair in enumerate((notify_function, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Lambda retries the invocation that failed (the claim was someone else's, in progress) a minute later.
    retried = [
        deliver(notify_function, event, clock).result
        for outcome in first_invocations.values()
        if isinstance(outcome, Exception)
    ]

    outcomes = [outcome for outcome in first_invocations.values() if not isinstance(outcome, Exception)] + retried
    assert len(slack.received) == 1, "one claim won; the other delivery did not post"
    assert sorted(outcomes, key=json.dumps) == [{"posted": 0, "skipped": 1}, {"posted": 1, "skipped": 0}]
    assert posted_state(notify_function, parsed.event_id) == "posted"
