"""reconcile: on a schedule, ask Batch about jobs that have been quiet too long.

Batch's events can be lost, and Batch forgets finished jobs after a day; this
makes sure no job stays RUNNING in the table forever, and that a job stuck
RUNNABLE gets a `job.stuck` event with advice. The work is the domain's
`Reconciler`; this handler only runs it and counts.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchdrop.wiring.build import build_reconciler
from batchdrop.wiring.settings import TrackSettings, load_settings

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchdrop"})
metrics = Metrics()
reconciler = build_reconciler(load_settings(TrackSettings))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    counts = reconciler.reconcile()
    metrics.add_metric(name="ReconcileRuns", unit=MetricUnit.Count, value=1)
    for name, value in sorted(counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("reconciled", extra=dict(counts))
    return dict(counts)
