"""Slack's side: which incoming webhook a team posts to, and posting to it.

The webhook URLs are credentials (anyone holding one can post to the channel),
so they live in one Secrets Manager secret, a JSON object whose keys are team
names or Slack channels as the platform config spells them:

    {"vision": "https://hooks.slack.com/services/T…/B…/…",
     "#forecasting-ml": "https://hooks.slack.com/services/T…/B…/…"}

It is read with Powertools Parameters and cached for `max_age` seconds. A
URL never goes into a log line, an exception message or an environment
variable: `Webhook` keeps it out of its repr, and errors name only the key.

Posting uses slack-sdk's `WebhookClient`, with its retry handlers: a 429 is
retried after Slack's `Retry-After` (if that is short enough to wait for in
one invocation), a 500 or 503 a couple of times with backoff, a dropped
connection once. Whatever still fails raises `SlackPostFailed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from pydantic import StringConstraints, TypeAdapter, ValidationError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient, WebhookResponse

from batchdrop.errors import BatchdropError, ConfigInvalid, ConfigUnavailable
from batchdrop.platform.source import PlatformConfigSource

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from batchdrop.notify.block_kit import SlackMessage

DEFAULT_CACHE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 5
MAX_RETRIES = 2
"""Per post, whatever the cause; with the waits below a post gives up within ~40 s."""
MAX_RETRY_AFTER_SECONDS = 10
"""A longer Retry-After is not waited for in the invocation: the post fails, and Lambda retries later."""

WebhookUrl = Annotated[
    str,
    StringConstraints(  # https; plain http only on loopback (a local stand-in for Slack), never a token in clear
        pattern=r"^(https://[^\s|<>/]+|http://(127\.0\.0\.1|localhost)(:[0-9]+)?)/[^\s|<>]*$", max_length=2048
    ),
]
_WEBHOOK_MAP: TypeAdapter[dict[str, WebhookUrl]] = TypeAdapter(dict[str, WebhookUrl])

# slack-sdk logs request URLs at debug level (and at info on connection retries): its own logger,
# held above info whatever the function's log level, keeps the webhook's secret path out of the logs.
_sdk_logger = logging.getLogger("batchdrop.slack_sdk")
_sdk_logger.setLevel(logging.WARNING)


class WebhooksUnavailable(BatchdropError):
    """The webhook secret (or the platform config, for a team's channel) cannot be read or is malformed."""


class SlackPostFailed(BatchdropError):
    """Slack did not take the message, after the retries that made sense."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        """Slack's HTTP status; None when no answer came."""
        self.error = error
        """Slack's error word (`invalid_payload`, `no_service`, `channel_is_archived`…)."""


@dataclass(frozen=True)
class Webhook:
    key: str
    """The secret's key that matched: the team, or its channel. Safe to log."""
    url: str = field(repr=False)


class WebhookDirectory:
    """Finds a team's webhook: by the team's name, else by its Slack channel in the platform config."""

    def __init__(
        self,
        secrets: SecretsProvider,
        secret_id: str,
        config: PlatformConfigSource,
        *,
        max_age: int = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self.secrets = secrets
        self.secret_id = secret_id
        self.config = config
        self.max_age = max_age
        self._refresh = False

    def webhook_for(self, team: str) -> Webhook | None:
        """The team's webhook; None when neither the team nor its channel has one."""
        webhooks = self._webhooks()
        if team in webhooks:
            return Webhook(key=team, url=webhooks[team])
        try:
            declared = self.config.get().teams.get(team)
        except (ConfigUnavailable, ConfigInvalid) as exc:
            raise WebhooksUnavailable(f"cannot find team {team}'s Slack channel: {exc}") from exc
        channel = declared.slack_channel if declared is not None else None
        if channel is None:
            return None
        for key in (channel, f"#{channel.lstrip('#')}", channel.lstrip("#")):
            if key in webhooks:
                return Webhook(key=key, url=webhooks[key])
        return None

    def refresh(self) -> None:
        """Read the secret again on the next look-up (a webhook failed: it may have been rotated)."""
        self._refresh = True

    def _webhooks(self) -> dict[str, str]:
        force, self._refresh = self._refresh, False
        try:
            raw = self.secrets.get(self.secret_id, max_age=self.max_age, transform="json", force_fetch=force)
        except (GetParameterError, TransformParameterError) as exc:
            raise WebhooksUnavailable(f"cannot read the Slack webhook secret {self.secret_id}: {exc}") from exc
        try:
            return _WEBHOOK_MAP.validate_python(raw)
        except ValidationError as exc:
            # The errors' inputs would be the URLs: name the keys and what is wrong, nothing else.
            wrong = sorted({str(error["loc"][0]) if error["loc"] else "(the whole secret)" for error in exc.errors()})
            raise WebhooksUnavailable(
                f"the Slack webhook secret {self.secret_id} must be a JSON object of team or channel -> "
                f"https URL; these entries are not: {', '.join(wrong)}"
            ) from None


class WebhookSender(Protocol):
    """What batchdrop uses of slack-sdk's `WebhookClient` (tests stand in for it)."""

    def send_dict(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> WebhookResponse: ...


class _BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler, but only for a Retry-After the invocation can afford to wait."""

    def __init__(self, max_retry_count: int, max_wait_seconds: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_seconds = max_wait_seconds

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None  # a 429 is a response
        waits = [
            value for name, values in response.headers.items() if name.lower() == "retry-after" for value in values
        ]
        return not waits or (waits[0].strip().isdigit() and int(waits[0]) <= self.max_wait_seconds)


def webhook_client(url: str) -> WebhookSender:
    """slack-sdk's webhook client with bounded retries: throttling, server errors, dropped connections."""
    return WebhookClient(
        url,
        timeout=REQUEST_TIMEOUT_SECONDS,
        logger=_sdk_logger,
        retry_handlers=[
            _BoundedRateLimitRetryHandler(max_retry_count=MAX_RETRIES, max_wait_seconds=MAX_RETRY_AFTER_SECONDS),
            ServerErrorRetryHandler(
                max_retry_count=MAX_RETRIES, interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=0.5)
            ),
            ConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )


class SlackPoster:
    """Posts a message to a webhook; `SlackPostFailed` unless Slack said `ok`."""

    def __init__(self, client_factory: Callable[[str], WebhookSender] = webhook_client) -> None:
        self.client_factory = client_factory
        self._clients: dict[str, WebhookSender] = {}

    def post(self, webhook: Webhook, message: SlackMessage) -> None:
        client = self._clients.get(webhook.url)
        if client is None:
            client = self._clients[webhook.url] = self.client_factory(webhook.url)
        try:
            response = client.send_dict(message.payload())
        except Exception as exc:  # urllib's errors once the retries are spent: no answer at all
            raise SlackPostFailed(
                f"no answer from Slack for webhook {webhook.key}: {type(exc).__name__}", status=None
            ) from exc
        if response.status_code == 200:
            return
        error = (response.body or "").strip()[:100] or None
        raise SlackPostFailed(
            f"Slack refused the message for webhook {webhook.key}: HTTP {response.status_code} {error or ''}".rstrip(),
            status=response.status_code,
            error=error,
        )
