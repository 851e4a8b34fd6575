"""Telling people what happened (docs/notifications.md): which events reach Slack, where, and only once.

`Notifier.notify(event)` for each event that arrives from the SNS topic:

1. **Decide** (`is_wanted`, the one place of the rule). A rejected spec and a
   stuck job are always told; so is a failed or lost job, and a recovery
   started (`job.recovering`: batchdrop replaces a job that ran out of memory
   or lost its spot capacity), which tells that job's failure: its own
   `job.status` failure (`recovering: true`) is not posted. A submitted run and
   any other job status only when the spec asked for it (`notify: {on: [...]}`,
   carried in the event's `notify_on`). A pipeline (a spec with `steps`) ends
   in one summary (`run.ended`): always when it failed or was cancelled, when
   it succeeded if the spec asked for `succeeded`; so its steps' own
   `succeeded` is not posted, nor the failure of a step that never ran
   because a step it waits for failed (that step's failure is posted, with
   its logs). A single job's messages say all there is: its `run.ended` is
   not posted. A run with a recovered step (single job or pipeline) always
   ends in its summary, which tells each recovered step's whole chain on one
   line: its `job.recovering` message promised to tell how it ends.
2. **Find the webhook** of the team (by team, else by its Slack channel). A
   team without one is skipped with a log line: not every team uses Slack.
3. **Claim** the event in the notification log, so the same event (the same
   `event_id`, delivered twice) is posted once.
4. **Post.** If Slack does not take it, the claim is released and
   `NotificationFailed` raised: Lambda retries the event, and after its
   retries hands it to the function's on-failure destination. The tracker
   never waits on any of this: it only publishes to SNS.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import ValidationError

from batchdrop.errors import BatchdropError
from batchdrop.events.contract import (
    EVENT_ADAPTER,
    JobRecovering,
    JobStatusChanged,
    JobStuck,
    RunEnded,
    RunRejected,
    RunSubmitted,
    TeamBudget,
)
from batchdrop.notify.block_kit import SlackMessage
from batchdrop.notify.posted_log import Claim, NotificationLog, NotificationLogUnavailable
from batchdrop.notify.slack_blocks import NotifiableEvent, render
from batchdrop.notify.slack_webhooks import SlackPoster, SlackPostFailed, WebhookDirectory, WebhooksUnavailable
from batchdrop.spec.model import SINGLE_STEP

logger = logging.getLogger(__name__)

ALWAYS_TOLD = frozenset({"failed", "lost"})
"""Job statuses told whatever the spec asked for."""
MAX_UNCONFIRMED = 1_000
"""Posted-but-unrecorded events an instance remembers (a few dozen bytes each)."""

SkipReason = Literal["not_requested", "no_webhook", "duplicate"]


class NotificationFailed(BatchdropError):
    """The event could not be posted now. Raised so that Lambda retries it (then the on-failure destination)."""


class NotificationInProgress(NotificationFailed):
    """Another invocation is posting this very event; a retry finds it posted (or the claim abandoned)."""


@dataclass(frozen=True)
class Delivery:
    """What became of one event."""

    outcome: Literal["posted", "skipped"]
    team: str
    event_type: str
    reason: SkipReason | None = None
    """Why it was skipped."""


def is_wanted(event: NotifiableEvent) -> bool:
    """Whether the event is one people asked to hear about (or must hear about)."""
    if isinstance(event, RunRejected | JobStuck | JobRecovering | TeamBudget):
        return True
    if isinstance(event, JobStatusChanged) and event.recovering:
        return False  # the failure of a job being replaced: its `job.recovering` message tells it
    asked = {status.lower() for status in event.notify_on}
    if isinstance(event, RunSubmitted):
        return "submitted" in asked
    if isinstance(event, RunEnded):
        if any(step.recoveries for step in event.steps):  # `job.recovering` promised to tell how it ends
            return True
        # A pipeline's one summary; a single job's own messages told it all.
        return event.step_count > 1 and (event.status != "succeeded" or "succeeded" in asked)
    if in_pipeline(event) and (event.status == "succeeded" or event.failure_class == "dependency"):
        return (
            False  # a pipeline's step that succeeded, or never ran because one before it failed: the summary tells it
        )
    return event.status in ALWAYS_TOLD or event.status in asked


def in_pipeline(event: JobStatusChanged) -> bool:
    """Whether the job is one step of several. An event from before jobs kept their run's step count
    goes by the step's name: a spec without `steps` has one step, `main`."""
    if event.step_count is not None:
        return event.step_count > 1
    return event.step != SINGLE_STEP


def read_event(message: str) -> NotifiableEvent | None:
    """The event in an SNS message; None for a type this version does not know (a newer publisher's).

    A known type that does not match its model raises `ValidationError`: that is a bug to see, not to skip.
    """
    try:
        return cast(NotifiableEvent, EVENT_ADAPTER.validate_json(message))
    except ValidationError as exc:
        if any(error["type"] == "union_tag_invalid" for error in exc.errors()):
            return None
        raise


class Notifier:
    def __init__(
        self,
        *,
        webhooks: WebhookDirectory,
        poster: SlackPoster,
        log: NotificationLog,
        renderer: Callable[[NotifiableEvent], SlackMessage] = render,
    ) -> None:
        self.webhooks = webhooks
        self.poster = poster
        self.log = log
        self.renderer = renderer
        self._unconfirmed: OrderedDict[str, Claim] = OrderedDict()
        """Posted events whose `posted` marker DynamoDB did not take: this instance remembers them (and
        tries the marker again on each later call), so a duplicate it receives is not posted again."""

    def notify(self, event: NotifiableEvent) -> Delivery:
        """Post the event to its team's Slack channel, if wanted and not posted already."""
        about: dict[str, Any] = {
            "event_id": event.event_id,
            "type": event.type,
            "status": event.status,
            "team": event.team,
            "run_id": event.run_id,
        }
        if not is_wanted(event):
            logger.debug("event not asked for: not posted", extra=about)
            return self._skipped(event, "not_requested")
        self._confirm_pending()
        if event.event_id in self._unconfirmed:
            logger.info("event already posted by this instance: duplicate delivery skipped", extra=about)
            return self._skipped(event, "duplicate")
        try:
            webhook = self.webhooks.webhook_for(event.team)
        except WebhooksUnavailable as exc:
            raise NotificationFailed(f"cannot find where to post event {event.event_id}: {exc}") from exc
        if webhook is None:
            logger.info("no Slack webhook for the team or its channel: not posted", extra=about)
            return self._skipped(event, "no_webhook")
        message = self.renderer(event)  # before the claim: a message that cannot be made claims nothing
        try:
            claim = self.log.claim(event.event_id)
        except NotificationLogUnavailable as exc:
            raise NotificationFailed(str(exc)) from exc
        if claim.outcome == "posted":
            logger.info("event already posted: duplicate delivery skipped", extra=about)
            return self._skipped(event, "duplicate")
        if claim.outcome == "in_progress":
            raise NotificationInProgress(f"event {event.event_id} is being posted by another invocation")
        try:
            self.poster.post(webhook, message)
        except SlackPostFailed as exc:
            self._give_back(claim, about)
            self.webhooks.refresh()  # a rotated or revoked webhook: the retry reads the secret again
            logger.warning(
                "Slack did not take the message",
                extra={**about, "webhook": webhook.key, "http_status": exc.status, "slack_error": exc.error},
            )
            raise NotificationFailed(f"event {event.event_id} not posted: {exc}") from exc
        try:
            self.log.confirm(claim)
        except NotificationLogUnavailable:
            # Posted: a retry would only post it again. The `posting` claim stops other instances' duplicates
            # until it is stale; this instance remembers it, and records it when DynamoDB takes writes again.
            logger.warning("posted, but the notification log could not record it", extra=about, exc_info=True)
            self._unconfirmed[event.event_id] = claim
            while len(self._unconfirmed) > MAX_UNCONFIRMED:
                self._unconfirmed.popitem(last=False)
        logger.info("posted to Slack", extra={**about, "webhook": webhook.key})
        return Delivery(outcome="posted", team=event.team, event_type=event.type)

    def _confirm_pending(self) -> None:
        for event_id, claim in list(self._unconfirmed.items()):
            try:
                self.log.confirm(claim)
            except NotificationLogUnavailable:
                return  # still refused: try again on the next call
            del self._unconfirmed[event_id]

    def _give_back(self, claim: Claim, about: dict[str, Any]) -> None:
        try:
            self.log.release(claim)
        except NotificationLogUnavailable:
            # The claim stays until it is stale; a retry meanwhile is told "in progress" and retries again.
            logger.warning("cannot release the claim of an unposted event", extra=about, exc_info=True)

    @staticmethod
    def _skipped(event: NotifiableEvent, reason: SkipReason) -> Delivery:
        return Delivery(outcome="skipped", team=event.team, event_type=event.type, reason=reason)
