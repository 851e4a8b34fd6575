"""The one place boto3 clients are made, with the settings every function's clients share.

Endpoints and credentials come from the environment as boto3 reads it, so the same code runs in
Lambda and against the local emulator (`AWS_ENDPOINT_URL`). Gateways and stores take clients injected.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from batchdrop.platform.source import PlatformConfigSource

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
- secretsmanager GetSecretValue (notify's webhooks): reads.
- dynamodb (notify's NotificationLog): `claim` is a conditional put; a re-sent copy of an applied claim
  fails its condition and reads back our own `claim_id`, so it is taken as ours. `confirm` puts the
  same item again; `release` deletes only our own claim (conditional on `claim_id`). Slack posts are
  not boto3 calls; they are made once per claim (see `Notifier`).

Batch is built with `BATCH_CLIENT_CONFIG` (one attempt per call): SubmitJob has no idempotency token
and only `BatchGateway` may decide to send it again, after looking the job's name up.
"""


@cache
def default_session() -> boto3.Session:
    """One session for all of a function's clients: each new session reads botocore's endpoint and service
    models again (~60 ms of a cold start for a second DynamoDB client)."""
    return boto3.Session()


def client(service: str, session: boto3.Session | None = None, *, config: Config = STANDARD_CLIENT_CONFIG) -> Any:
    return (session or default_session()).client(service, config=config)  # type: ignore[call-overload]


def config_source(location: str, ttl_seconds: float, session: boto3.Session, s3: Any = None) -> PlatformConfigSource:
    """Where the platform config is read from; a client is made only for the service it is in."""
    return PlatformConfigSource(
        location,
        ttl_seconds=ttl_seconds,
        s3_client=(s3 or client("s3", session)) if location.startswith("s3://") else None,
        ssm_client=client("ssm", session) if location.startswith("ssm:") else None,
    )
