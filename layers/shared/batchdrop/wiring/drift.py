"""Composition of the daily platform check the reconcile function runs (`track/platform_drift`)."""

from __future__ import annotations

import boto3

from batchdrop.gateways.account import AccountGateway
from batchdrop.store.drift import DriftLog
from batchdrop.track.platform_drift import DriftWatch
from batchdrop.wiring.clients import client, config_source
from batchdrop.wiring.settings import TrackSettings


def build_drift_watch(settings: TrackSettings, session: boto3.Session | None = None) -> DriftWatch:
    session = session or boto3.Session()
    return DriftWatch(
        config=config_source(settings.platform_config, settings.config_ttl_seconds, session),
        location=settings.platform_config,
        # Describes only: botocore's retries are safe for them (the standard client settings).
        account=AccountGateway(client("batch", session), client("ec2", session)),
        log=DriftLog(client("dynamodb", session), settings.table_name),
    )
