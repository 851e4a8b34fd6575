"""Composition of the submit, track, reconcile and publish functions: the services each needs, built on
clients from `batchdrop.wiring.clients` (the one place they are made; gateways take them injected)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import boto3

from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway
from batchdrop.gateways.bucket import JobsBucket
from batchdrop.gateways.submit_rate import SharedSubmitRate
from batchdrop.platform.config import BudgetConfig
from batchdrop.platform.source import PlatformConfigSource
from batchdrop.store.claims import RunClaims
from batchdrop.store.costs import TeamCosts
from batchdrop.store.submit_slots import SubmitSlots
from batchdrop.submit.submitter import Submitter
from batchdrop.wiring.clients import client, config_source, default_session
from batchdrop.wiring.settings import PublishSettings, SubmitSettings, TrackSettings

if TYPE_CHECKING:  # imported where each is built: the submit function's cold start imports only its own path
    from batchdrop.publish.teller import Teller
    from batchdrop.submit.recovery import Recoverer
    from batchdrop.track.early_retry import EarlyRetry
    from batchdrop.track.reconcile import Reconciler
    from batchdrop.track.tracker import Tracker


def build_submitter(settings: SubmitSettings, session: boto3.Session | None = None) -> Submitter:
    session = session or default_session()
    s3 = client("s3", session)
    dynamodb = client("dynamodb", session)
    return Submitter(
        table=RunClaims(dynamodb, settings.table_name, retention=timedelta(days=settings.retention_days)),
        batch=BatchGateway(
            client("batch", session, config=BATCH_CLIENT_CONFIG),
            submit_rate=SharedSubmitRate(
                SubmitSlots(dynamodb, settings.table_name), settings.submit_jobs_per_second, settings.submit_instances
            ),
        ),
        bucket=JobsBucket(s3),
        config=config_source(settings.platform_config, settings.config_ttl_seconds, session, s3=s3),
        stale_claim_after=timedelta(seconds=settings.stale_claim_seconds),
        claim_lease=timedelta(seconds=settings.claim_lease_seconds),
        retention=timedelta(days=settings.retention_days),
        month_costs=TeamCosts(dynamodb, settings.table_name),  # a team's month, for its monthly budget
    )


def build_recoverer(submitter: Submitter, settings: SubmitSettings, session: boto3.Session | None = None) -> Recoverer:
    """The submit function's second service (the records table's stream): on the submitter's own Batch
    gateway, bucket and platform config, so both share their caches and clients."""
    from batchdrop.store.recoveries import Recoveries  # noqa: PLC0415  # the recovery path: on its first stream batch
    from batchdrop.submit.recovery import Recoverer  # noqa: PLC0415

    session = session or default_session()
    return Recoverer(
        table=Recoveries(
            client("dynamodb", session), settings.table_name, retention=timedelta(days=settings.retention_days)
        ),
        batch=submitter.batch,
        bucket=submitter.bucket,
        config=submitter.config,
    )


def build_tracker(settings: TrackSettings, session: boto3.Session | None = None) -> Tracker:
    from batchdrop.store.job_states import JobStates  # noqa: PLC0415  # not the submit function's path
    from batchdrop.track.tracker import Tracker  # noqa: PLC0415

    session = session or default_session()
    dynamodb = client("dynamodb", session)
    config = config_source(settings.platform_config, settings.config_ttl_seconds, session)
    return Tracker(
        table=JobStates(dynamodb, settings.table_name, retention=timedelta(days=settings.retention_days)),
        config=config,
        region=settings.region,
        costs=TeamCosts(dynamodb, settings.table_name, budgets=lambda team: _budget(config, team)),
    )


def _budget(config: PlatformConfigSource, team: str) -> BudgetConfig | None:
    """A team's budget as the platform config says now (None: it has none, or the team is unknown)."""
    found = config.get().teams.get(team)
    return found.budget if found is not None else None


def build_teller(settings: PublishSettings, session: boto3.Session | None = None) -> Teller:
    from batchdrop.gateways.topic import EventPublisher  # noqa: PLC0415  # not the submit function's path
    from batchdrop.publish.teller import Teller  # noqa: PLC0415

    session = session or default_session()
    return Teller(
        publisher=EventPublisher(client("sns", session), settings.events_topic_arn),
        bucket=JobsBucket(client("s3", session)),
        region=settings.region,
    )


def build_early_retry(settings: TrackSettings, session: boto3.Session | None = None) -> EarlyRetry | None:
    from batchdrop.track.early_retry import EarlyRetry  # noqa: PLC0415  # not the submit function's path

    if settings.tracking_queue_url is None:
        return None
    return EarlyRetry(
        client("sqs", session), settings.tracking_queue_url, first_delay_seconds=settings.unrecorded_retry_seconds
    )


def build_reconciler(settings: TrackSettings, session: boto3.Session | None = None) -> Reconciler:
    from batchdrop.track.reconcile import Reconciler  # noqa: PLC0415  # not the submit function's path

    session = session or default_session()
    return Reconciler(
        tracker=build_tracker(settings, session),
        batch=BatchGateway(client("batch", session, config=BATCH_CLIENT_CONFIG)),
        quiet_after=timedelta(minutes=settings.quiet_minutes),
        runnable_after=timedelta(minutes=settings.runnable_alert_minutes),
    )
