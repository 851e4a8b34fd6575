"""Composition: the boto3 clients each function needs, and the services built on them.

This is the one place clients are created (gateways take them injected).
Endpoints and credentials come from the environment as boto3 reads it, so the
same code runs in Lambda and against the local emulator (`AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config

from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway
from batchdrop.gateways.bucket import JobsBucket
from batchdrop.gateways.topic import EventPublisher
from batchdrop.platform.source import PlatformConfigSource
from batchdrop.publish.teller import Teller
from batchdrop.store.claims import RunClaims
from batchdrop.store.job_states import JobStates
from batchdrop.submit.submitter import Submitter
from batchdrop.track.early_retry import EarlyRetry
from batchdrop.track.reconcile import Reconciler
from batchdrop.track.tracker import Tracker
from batchdrop.wiring.settings import PublishSettings, SubmitSettings, TrackSettings

STANDARD_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 6},  # attempts, not retries (botocore's `max_attempts`)
    connect_timeout=5,
    read_timeout=20,
)
"""Every client here but Batch's: botocore re-sends a call on a throttle, a 5xx or a lost connection,
i.e. also a call that was applied and whose answer was lost. That is safe only for calls that are
idempotent or harmless twice, which are, client by client:

- s3: GetObject/HeadObject read; PutObject writes a receipt whose key and body a run determines, so
  a second copy writes the same object; a conditional one (If-Match / If-None-Match, at a key's
  receipt path) re-sent after it was applied fails its precondition, and the writer reads the key
  again and finds its own receipt there.
- dynamodb (the stores of `batchdrop.store`): reads; puts of whole items (the same item again); conditional writes
  (claims, status transitions ordered by `status_order`, versioned child states), whose re-sent copy
  fails its condition instead of applying twice (so a failed condition may be our own write: the
  caller must tell by what is stored, as `ReturnValuesOnConditionCheckFailure` shows). An array's
  child counts are absolute values kept with the versioned states they follow (`put_children`),
  and copied onto the parent guarded by that version: nothing here ADDs, so nothing counts twice.
- sns (the publish function's Teller): Publish/PublishBatch re-sent may deliver an event twice.
  Acceptable only because every consumer (notify, Slack, the events topic's subscribers)
  deduplicates by the event's `event_id`; the outbox publishes at least once anyway.
- sqs (EarlyRetry): ChangeMessageVisibilityBatch re-sent sets the same timeouts again.
- ssm: GetParameter reads.

Batch is built with `BATCH_CLIENT_CONFIG` (one attempt per call): SubmitJob has no idempotency token
and only `BatchGateway` may decide to send it again, after looking the job's name up.
"""


def client(service: str, session: boto3.Session | None = None, *, config: Config = STANDARD_CLIENT_CONFIG) -> Any:
    return (session or boto3.Session()).client(service, config=config)  # type: ignore[call-overload]


def build_submitter(settings: SubmitSettings, session: boto3.Session | None = None) -> Submitter:
    session = session or boto3.Session()
    s3 = client("s3", session)
    return Submitter(
        table=RunClaims(
            client("dynamodb", session), settings.table_name, retention=timedelta(days=settings.retention_days)
        ),
        batch=BatchGateway(client("batch", session, config=BATCH_CLIENT_CONFIG)),
        bucket=JobsBucket(s3),
        config=_config_source(settings.platform_config, settings.config_ttl_seconds, session, s3=s3),
        stale_claim_after=timedelta(seconds=settings.stale_claim_seconds),
        retention=timedelta(days=settings.retention_days),
    )


def build_tracker(settings: TrackSettings, session: boto3.Session | None = None) -> Tracker:
    session = session or boto3.Session()
    return Tracker(
        table=JobStates(
            client("dynamodb", session), settings.table_name, retention=timedelta(days=settings.retention_days)
        ),
        config=_config_source(settings.platform_config, settings.config_ttl_seconds, session),
        region=settings.region,
    )


def build_teller(settings: PublishSettings, session: boto3.Session | None = None) -> Teller:
    session = session or boto3.Session()
    return Teller(
        publisher=EventPublisher(client("sns", session), settings.events_topic_arn),
        bucket=JobsBucket(client("s3", session)),
        region=settings.region,
    )


def build_early_retry(settings: TrackSettings, session: boto3.Session | None = None) -> EarlyRetry | None:
    if settings.tracking_queue_url is None:
        return None
    return EarlyRetry(
        client("sqs", session), settings.tracking_queue_url, first_delay_seconds=settings.unrecorded_retry_seconds
    )


def build_reconciler(settings: TrackSettings, session: boto3.Session | None = None) -> Reconciler:
    session = session or boto3.Session()
    return Reconciler(
        tracker=build_tracker(settings, session),
        batch=BatchGateway(client("batch", session, config=BATCH_CLIENT_CONFIG)),
        quiet_after=timedelta(minutes=settings.quiet_minutes),
        runnable_after=timedelta(minutes=settings.runnable_alert_minutes),
    )


def _config_source(location: str, ttl_seconds: float, session: boto3.Session, s3: Any = None) -> PlatformConfigSource:
    """Where the platform config is read from; a client is made only for the service it is in."""
    return PlatformConfigSource(
        location,
        ttl_seconds=ttl_seconds,
        s3_client=(s3 or client("s3", session)) if location.startswith("s3://") else None,
        ssm_client=client("ssm", session) if location.startswith("ssm:") else None,
    )
