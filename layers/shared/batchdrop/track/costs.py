"""Team costs counted as jobs end (`batchdrop.store.costs`, docs/costs.md): each job Batch ended is added to
its team's month once, whichever of its deliveries or instances gets there first.

A job is counted when its end is applied, and again (to no effect: the ledger's marker refuses it) when a
copy of that end comes back after it. An array job is counted once, with its children summed, when both
its own end and every child's end are merged: whichever of the two is written last counts it, for each
reads the other after its own write (strongly consistent), so one of them always sees both.

Where each team's month stands (for the dashboard and the budget's crossings) is read once per team-month
per tracking batch, after all of the batch's counts (`settle_months`), not once per ended job.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from batchdrop.events.contract import Usage
from batchdrop.store.child_states import children_ended
from batchdrop.store.costs import JobCost, MonthStanding, month_of
from batchdrop.store.items import Children, JobChange
from batchdrop.store.records import JobRecord, utc_now
from batchdrop.track.batches import TrackResult
from batchdrop.track.ports import TrackStore

logger = logging.getLogger(__name__)

KNOWN_COUNTED = 10_000
COUNTED_STATUSES = frozenset({"SUCCEEDED", "FAILED"})
"""Ends Batch reported: a job batchdrop ended on its own word (LOST, a failed upstream step) has no usage."""


class CostLedger(Protocol):  # `batchdrop.store.costs.TeamCosts`
    def count(self, cost: JobCost) -> bool: ...


@runtime_checkable
class MonthReader(Protocol):  # `batchdrop.store.costs.TeamCosts` (given the teams' budgets, it marks crossings)
    def standing(self, cost: JobCost) -> MonthStanding: ...


@dataclass
class _MonthToRead:
    """A team-month this batch counted into: where it stands is read once, after the batch's counts."""

    last: JobCost
    """The newest cost counted into it: a crossing it marks names this cost's run."""
    jobs: list[str] = field(default_factory=list)
    messages: set[str] = field(default_factory=set)


class CostCounting:
    """Adds each ended job's cost to its team's month, once; tells the dashboard what it added and where
    the month stands."""

    def __init__(self, *, table: TrackStore, ledger: CostLedger, clock: Callable[[], datetime] = utc_now) -> None:
        self.table = table
        self.ledger = ledger
        self.clock = clock
        self._counted: OrderedDict[str, None] = OrderedDict()
        """Jobs this instance counted or found counted (bounded): a later copy of their end costs no write."""
        self._months: dict[tuple[str, str], _MonthToRead] = {}

    def job_ended(
        self, before: JobRecord, change: JobChange | None, result: TrackResult, messages: Sequence[str]
    ) -> None:
        """A job's end: just applied (`change`), or found applied already (`before` is the job as it is).
        `messages`: the deliveries that told it, sent back if its month cannot be read."""
        job = before if change is None else ended(before, change)
        if job.status not in COUNTED_STATUSES:
            return
        if job.array_size:
            children = self.table.get_children(job.job_id)
            if not all_ended(children, job.array_size):
                return  # its last children's merge counts it (`children_merged`)
            self._count(JobCost.of(job, children.usage), result, messages)
        else:
            self._count(JobCost.of(job), result, messages)

    def children_merged(
        self, parent: JobRecord, children: Children, result: TrackResult, messages: Sequence[str]
    ) -> None:
        """An array's children as just merged (or found merged already): once every one has ended, the
        array is counted if it has ended too."""
        if not all_ended(children, parent.array_size or 0):
            return
        job = self.table.get_job(parent.job_id)
        if job is not None and job.status in COUNTED_STATUSES:
            self._count(JobCost.of(job, children.usage), result, messages)

    def settle_months(self, result: TrackResult) -> None:
        """Read where each team-month counted into stands, once, marking the budget levels it reached (after a
        refused count too: an earlier delivery may have counted and failed before marking). A month that
        cannot be read sends its jobs' ends back to the queue: their return reads it."""
        months, self._months = self._months, {}
        if not isinstance(self.ledger, MonthReader):
            return
        for month in months.values():
            try:
                standing = self.ledger.standing(month.last)
            except Exception:
                logger.exception("team month could not be read", extra={"team": month.last.team})
                result.failed.update(month.messages)
                for job_id in month.jobs:  # their return must count them again (refused) and read the month
                    self._counted.pop(job_id, None)
                continue
            result.counts["BudgetCrossings"] += len(standing.crossings)
            if standing.month == month_of(self.clock()):  # a late end of last month is not this month's figure
                result.months[standing.team] = standing

    def _count(self, cost: JobCost, result: TrackResult, messages: Sequence[str]) -> None:
        if cost.job_id in self._counted:
            return
        counted = self.ledger.count(cost)
        month = self._months.setdefault((cost.team, cost.month), _MonthToRead(cost))
        month.last = cost
        month.jobs.append(cost.job_id)
        month.messages.update(messages)
        self._counted[cost.job_id] = None
        while len(self._counted) > KNOWN_COUNTED:
            self._counted.popitem(last=False)
        if not counted:
            return
        result.counts["CostsCounted"] += 1
        if cost.usd is not None:
            result.costs[cost.team] += cost.usd


def all_ended(children: Children, size: int) -> bool:
    return size > 0 and children_ended(children.states, size) >= size


def ended(before: JobRecord, change: JobChange) -> JobRecord:
    """The job as its change left it (what a cost is made of: its status, usage and end)."""
    update: dict[str, Any] = {"status": change.status}
    if change.fields.get("usage") is not None:
        update["usage"] = Usage.model_validate(change.fields["usage"])
    update["finished_at"] = datetime.fromisoformat(change.at)  # when it ended (ISO time, `timestamp`)
    return before.model_copy(update=update)
