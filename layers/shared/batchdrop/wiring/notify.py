"""Composition of the notify function: its boto3 clients and the `Notifier` built on them.

Kept apart from `batchdrop.wiring.build` so that the notify function's cold start
does not import the submit and track paths. Its clients come from the same place
(`batchdrop.wiring.clients`), with the same settings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from batchdrop.notify.notifier import Notifier
from batchdrop.notify.posted_log import NotificationLog
from batchdrop.notify.slack_webhooks import SlackPoster, WebhookDirectory, WebhookSender, webhook_client
from batchdrop.wiring.clients import client, config_source
from batchdrop.wiring.settings import NotifySettings


def build_notifier(
    settings: NotifySettings,
    session: boto3.Session | None = None,
    *,
    webhook_client_factory: Callable[[str], WebhookSender] = webhook_client,
) -> Notifier:
    session = session or boto3.Session()
    config = config_source(settings.platform_config, settings.config_ttl_seconds, session)
    return Notifier(
        webhooks=WebhookDirectory(
            SecretsProvider(boto3_client=client("secretsmanager", session)),
            settings.webhooks_secret,
            config,
            max_age=settings.webhooks_cache_seconds,
        ),
        poster=SlackPoster(webhook_client_factory),
        log=NotificationLog(
            client("dynamodb", session),
            settings.table_name,
            stale_after=timedelta(seconds=settings.claim_stale_seconds),
        ),
    )
