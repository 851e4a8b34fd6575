"""Each function's settings, read from its environment once, at cold start, and checked.

The template sets these variables (`template.yaml`, each function's
`Environment`); a missing or malformed one stops the function at start with
a message that names it, instead of failing on the first record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchdrop.errors import BatchdropError

_SNS_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$"


class SettingsInvalid(BatchdropError):
    """The function's environment is missing or has a malformed variable."""


class _Settings(BaseModel):
    # Each function reads one of these: its validator is built when it is first read, not at import
    # for all of them (a few ms of every cold start each).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)


class SubmitSettings(_Settings):
    table_name: str = Field(alias="TABLE_NAME", min_length=3, max_length=255)
    platform_config: str = Field(alias="BATCHDROP_PLATFORM_CONFIG", min_length=1)
    config_ttl_seconds: float = Field(default=60.0, alias="PLATFORM_CONFIG_TTL_SECONDS", gt=0)
    retention_days: int = Field(default=90, alias="RECORD_RETENTION_DAYS", ge=1)
    stale_claim_seconds: int = Field(default=960, alias="STALE_CLAIM_SECONDS", ge=60)
    """Longer than the function's timeout: a claim this old belongs to an invocation that is gone."""
    claim_lease_seconds: int = Field(default=125, alias="CLAIM_LEASE_SECONDS", ge=1)
    """The function's timeout and a margin: a claim younger than this may still be held by the invocation
    that took it, even for the same message (SQS may deliver a message twice at once)."""
    submit_jobs_per_second: float = Field(default=40.0, alias="SUBMIT_JOBS_PER_SECOND", gt=0)
    """The account's SubmitJob calls a second batchdrop may use (Batch takes about 50; the rest are left to
    the account's other users): the template's `SubmitJobsPerSecond`."""
    submit_instances: int = Field(default=5, alias="SUBMIT_MAX_CONCURRENCY", ge=1)
    """How many submit instances may run at once (the template's `SubmitMaxConcurrency`): each takes its
    share of the budget."""


def load_settings[SettingsT: _Settings](model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    try:
        return model.model_validate(dict(os.environ if environ is None else environ))
    except ValidationError as exc:
        names = {str(detail["loc"][0]): detail["msg"] for detail in exc.errors(include_url=False) if detail["loc"]}
        described = "; ".join(f"{name}: {message}" for name, message in names.items())
        raise SettingsInvalid(f"{model.__name__} cannot start: {described}") from exc


class TrackSettings(_Settings):
    """The track and reconcile functions' settings."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3, max_length=255)
    platform_config: str = Field(alias="BATCHDROP_PLATFORM_CONFIG", min_length=1)
    config_ttl_seconds: float = Field(default=60.0, alias="PLATFORM_CONFIG_TTL_SECONDS", gt=0)
    region: str = Field(alias="AWS_REGION", min_length=1)
    retention_days: int = Field(default=90, alias="RECORD_RETENTION_DAYS", ge=1)
    quiet_minutes: float = Field(default=10.0, alias="RECONCILE_QUIET_MINUTES", gt=0)
    """A job not heard of for this long is asked about (reconcile)."""
    runnable_alert_minutes: float = Field(default=30.0, alias="RUNNABLE_ALERT_MINUTES", gt=0)
    """A job RUNNABLE this long gets a `job.stuck` event (reconcile)."""
    tracking_queue_url: str | None = Field(default=None, alias="TRACKING_QUEUE_URL", min_length=1)
    """Where the track function's events come from (reconcile reads no queue)."""
    unrecorded_retry_seconds: int = Field(default=10, alias="UNRECORDED_RETRY_SECONDS", ge=0, le=300)
    """The first delay before an event of a job not yet recorded is tried again (track)."""


class PublishSettings(_Settings):
    """The publish function's settings: it reads the records table's stream, so it needs no table name."""

    events_topic_arn: str = Field(alias="EVENTS_TOPIC_ARN", pattern=_SNS_ARN)
    region: str = Field(alias="AWS_REGION", min_length=1)


_SECRETSMANAGER_ID = (
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+"
    r"|[A-Za-z0-9/_+=.@-]{1,512})$"
)


class ReportSettings(_Settings):
    """The report function's settings: it reads the records and writes to the run's own bucket."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3, max_length=255)


class NotifySettings(_Settings):
    """The notify function's settings."""

    table_name: str = Field(alias="TABLE_NAME", min_length=3, max_length=255)
    webhooks_secret: str = Field(alias="SLACK_WEBHOOKS_SECRET_ARN", pattern=_SECRETSMANAGER_ID)
    """The secret (name or ARN) mapping team or channel to an incoming-webhook URL; never the URLs themselves."""
    platform_config: str = Field(alias="BATCHDROP_PLATFORM_CONFIG", min_length=1)
    config_ttl_seconds: float = Field(default=60.0, alias="PLATFORM_CONFIG_TTL_SECONDS", gt=0)
    webhooks_cache_seconds: int = Field(default=300, alias="SLACK_WEBHOOKS_CACHE_SECONDS", ge=0)
    claim_stale_seconds: int = Field(default=90, alias="NOTIFY_CLAIM_STALE_SECONDS", ge=30)
    """Longer than the function's timeout: a `posting` claim this old belongs to an invocation that is gone."""
