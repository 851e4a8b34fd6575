"""Composition of the report function: its boto3 clients and the `ReportWriter` built on them (kept apart
from `batchdrop.wiring.build`, so its cold start imports only the report path)."""

from __future__ import annotations

import boto3

from batchdrop.gateways.bucket import JobsBucket
from batchdrop.report.publishing import ReportWriter
from batchdrop.store.job_states import JobStates
from batchdrop.store.queries import RecordQueries
from batchdrop.wiring.clients import client
from batchdrop.wiring.settings import ReportSettings


def build_report_writer(settings: ReportSettings, session: boto3.Session | None = None) -> ReportWriter:
    session = session or boto3.Session()
    dynamodb = client("dynamodb", session)
    return ReportWriter(
        table=RecordQueries(dynamodb, settings.table_name),
        children=JobStates(dynamodb, settings.table_name),
        bucket=JobsBucket(client("s3", session)),
    )
