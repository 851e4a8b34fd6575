"""reconcile: on a schedule, ask Batch about jobs that have been quiet too long.

Batch's events can be lost, and Batch forgets finished jobs after a day; this
makes sure no job stays RUNNING in the table forever, and that a job stuck
RUNNABLE gets a `job.stuck` event with advice. The work is the domain's
`Reconciler`; this handler only runs it and counts.

Once a day its second schedule sends `{"check": "platform"}`: the platform config against the
account (`DriftWatch`, docs/platform-check.md), counted as `PlatformDriftErrors` (alarmed) and
`PlatformDriftWarnings`; a day they disagree is recorded and told as `platform.drift`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchdrop.wiring.build import build_reconciler
from batchdrop.wiring.drift import build_drift_watch
from batchdrop.wiring.settings import TrackSettings, load_settings
from batchdrop.wiring.snapstart import register_snapshot_hooks

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
settings = load_settings(TrackSettings)
reconciler = build_reconciler(settings)
drift_watch = build_drift_watch(settings)
register_snapshot_hooks()
PLATFORM_CHECK = "platform"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    if event.get("check") == PLATFORM_CHECK:
        return _check_platform()
    counts = reconciler.reconcile()
    metrics.add_metric(name="ReconcileRuns", unit=MetricUnit.Count, value=1)
    for name, value in sorted(counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("reconciled", extra=dict(counts))
    return dict(counts)


def _check_platform() -> dict[str, int]:
    report, recorded = drift_watch.check()
    counts = {
        "PlatformDriftErrors": len(report.errors),
        "PlatformDriftWarnings": len(report.drifted) - len(report.errors),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info(
        "platform checked against the account",
        extra={**counts, "recorded": recorded, "drifted": [f"{f.name} {f.check}: {f.detail}" for f in report.drifted]},
    )
    return counts
