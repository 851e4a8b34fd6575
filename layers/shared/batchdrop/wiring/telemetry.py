"""EMF metrics that carry dimensions of their own (team, queue, reason), for the dashboard and alarms.

A function's `Metrics` object shares one set of dimensions per flush; a figure per team or queue
needs a metric of its own, which `single_metric` writes at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from batchdrop.store.costs import MonthStanding


def dimension_metric(name: str, value: float = 1, *, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    with single_metric(name=name, unit=unit, value=value) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)


def team_month_metrics(months: Mapping[str, MonthStanding]) -> None:
    """Each team's month so far, and its monthly budget where it has one, by `team`: the dashboard's month
    against the budget (docs/budgets.md). Within a month the newest figure is the largest: the dashboard
    shows each hour's maximum."""
    for team, month in sorted(months.items()):
        dimension_metric("TeamMonthToDateUSD", month.usd, unit=MetricUnit.NoUnit, team=team)
        if month.monthly_usd is not None:
            dimension_metric("TeamMonthlyBudgetUSD", month.monthly_usd, unit=MetricUnit.NoUnit, team=team)
