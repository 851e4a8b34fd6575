"""Composition of the notify function: its boto3 clients and the `Notifier` built on them.

Kept apart from `batchdrop.wiring.clients` so that the notify function's cold start
does not import the submit and track paths. The clients follow the same
policy: standard retries (these calls are idempotent, or conditional), short
timeouts, and endpoints and credentials from the environment as boto3 reads
it (`AWS_ENDPOINT_URL` points them at the local emulator).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from batchdrop.notify.notifier import Notifier
from batchdrop.notify.posted_log import NotificationLog
from batchdrop.notify.slack_webhooks import SlackPoster, WebhookDirectory, WebhookSender, webhook_client
from batchdrop.platform.source import PlatformConfigSource
from batchdrop.wiring.settings import NotifySettings

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 6},  # attempts, not retries (botocore's `max_attempts`)
    connect_timeout=5,
    read_timeout=20,
)
"""botocore re-sends a call on a throttle, a 5xx or a lost connection, i.e. also one that was applied
and whose answer was lost. Safe for each call the notify function makes:

- secretsmanager GetSecretValue, ssm GetParameter, s3 GetObject: reads.
- dynamodb (NotificationLog): `claim` is a conditional put; a re-sent copy of an applied claim fails
  its condition and reads back a `posting` marker, which is taken as someone else's claim in progress,
  so the event is retried once the claim is stale: late, never posted twice (the marker's `claim_id`
  is our own then; recognising it would spare the wait). `confirm` puts the same item again;
  `release` deletes only our own claim (conditional on `claim_id`).

Slack posts are not boto3 calls; they are made once per claim (see `Notifier`).
"""


def _client(service: str, session: boto3.Session) -> Any:
    return session.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


def build_notifier(
    settings: NotifySettings,
    session: boto3.Session | None = None,
    *,
    webhook_client_factory: Callable[[str], WebhookSender] = webhook_client,
) -> Notifier:
    session = session or boto3.Session()
    location = settings.platform_config
    config = PlatformConfigSource(
        location,
        ttl_seconds=settings.config_ttl_seconds,
        s3_client=_client("s3", session) if location.startswith("s3://") else None,
        ssm_client=_client("ssm", session) if location.startswith("ssm:") else None,
    )
    return Notifier(
        webhooks=WebhookDirectory(
            SecretsProvider(boto3_client=_client("secretsmanager", session)),
            settings.webhooks_secret,
            config,
            max_age=settings.webhooks_cache_seconds,
        ),
        poster=SlackPoster(webhook_client_factory),
        log=NotificationLog(
            _client("dynamodb", session),
            settings.table_name,
            stale_after=timedelta(seconds=settings.claim_stale_seconds),
        ),
    )
