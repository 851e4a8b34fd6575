"""EMF metrics that carry dimensions of their own (team, queue, reason), for the dashboard and alarms.

A function's `Metrics` object shares one set of dimensions per flush; a figure per team or queue
needs a metric of its own, which `single_metric` writes at once.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric


def dimension_metric(name: str, value: float = 1, *, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    with single_metric(name=name, unit=unit, value=value) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)
