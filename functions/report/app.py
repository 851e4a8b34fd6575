"""report: when a run ends, its report page (docs/report.md) is written beside its receipt.

Thin on purpose: parse the SNS records, keep the `run.ended` events (the subscription's filter policy
sends only those; anything else is acknowledged), hand each run id to the domain's `ReportWriter`, count
what happened. A failure raises: SNS invokes this function asynchronously, so Lambda retries the event
and then sends it to the on-failure destination. Tracking never waits on a report.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from batchdrop.report.records import RunNotFound
from batchdrop.wiring.report import build_report_writer
from batchdrop.wiring.settings import ReportSettings, load_settings
from batchdrop.wiring.snapstart import register_snapshot_hooks

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
writer = build_report_writer(load_settings(ReportSettings))
register_snapshot_hooks()


class EndedRun(BaseModel):
    """What this function reads of a `batchdrop.event/v1` message: its type and run."""

    type: str
    run_id: str | None = None


class EventNotification(BaseModel):  # the one field read of SNS's record: Powertools' parser models
    Message: str  # would import every event model it has (a cold start's ~10 ms)


class EventRecord(BaseModel):
    Sns: EventNotification


class SnsEvent(BaseModel):
    Records: list[EventRecord]


def ended_run(message: str) -> str | None:
    """The run id of a `run.ended` event; None for any other message (not this function's)."""
    try:
        event = EndedRun.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        logger.warning("a message that is not a batchdrop event: skipped")
        return None
    return event.run_id if event.type == "run.ended" else None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, int]:
    written = skipped = 0
    for record in SnsEvent.model_validate(event).Records:
        run_id = ended_run(record.Sns.Message)
        if run_id is None:
            skipped += 1
            continue
        logger.set_correlation_id(run_id)
        try:
            report = writer.write(run_id)
        except RunNotFound:  # expired, or a test event: nothing will ever make it
            logger.warning("the run of a run.ended event has no record: no report", extra={"run_id": run_id})
            skipped += 1
            continue
        logger.info("report written", extra={"run_id": run_id, "keys": report.keys, "bytes": report.size})
        metrics.add_metric(name="ReportBytes", unit=MetricUnit.Bytes, value=report.size)
        written += 1
    metrics.add_metric(name="ReportsWritten", unit=MetricUnit.Count, value=written)
    return {"written": written, "skipped": skipped}
