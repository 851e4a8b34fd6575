"""A drop's run checked against its team's budget before anything is submitted (docs/budgets.md).

The worst case is the plan's (`platform.budgets`), less the steps a resumed run reuses (they do not run
again). `per_run_usd` needs nothing else; `monthly_usd` needs what the team has spent this month so far:
one read of its month's item (`store.costs`), made only for a team with a monthly budget.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Protocol

from batchdrop.errors import Problem
from batchdrop.platform.budgets import budget_problems, worst_case
from batchdrop.platform.config import TeamConfig
from batchdrop.platform.planning import Plan
from batchdrop.store.costs import MonthCost, month_of
from batchdrop.store.records import utc_now


class MonthToDate(Protocol):  # `batchdrop.store.costs.TeamCosts`
    def months(self, teams: Iterable[str], months: Iterable[str]) -> list[MonthCost]: ...


class BudgetCheck:
    """Why a planned run may not be submitted under its team's budget (no problems: it may)."""

    def __init__(self, *, months: MonthToDate | None, clock: Callable[[], datetime] = utc_now) -> None:
        """`months`: the teams' month-to-date costs; None: monthly budgets are not checked."""
        self.months = months
        self.clock = clock

    def problems(
        self, plan: Plan, team: TeamConfig | None, *, reused: Collection[str] = (), monthly: bool = True
    ) -> list[Problem]:
        """`monthly=False`: the month is not read (a reclaimed drop whose first attempt passed the check and
        submitted jobs since: the month moved by them, and rejecting now would strand them)."""
        budget = team.budget if team is not None else None
        if budget is None:
            return []
        month, spent = None, None
        if monthly and budget.monthly_usd is not None and self.months is not None:
            month = month_of(self.clock())
            found = self.months.months([plan.team], [month])
            spent = found[0].total.usd if found else 0.0
        return budget_problems(
            worst_case(plan, skip=reused), team=plan.team, budget=budget, month=month, spent_usd=spent
        )
