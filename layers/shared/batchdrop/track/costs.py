"""Team costs counted as jobs end (`batchdrop.store.costs`, docs/costs.md): each job Batch ended is added to
its team's month once, whichever of its deliveries or instances gets there first.

A job is counted when its end is applied, and again (to no effect: the ledger's marker refuses it) when a
copy of that end comes back after it. An array job is counted once, with its children summed, when both
its own end and every child's end are merged: whichever of the two is written last counts it, for each
reads the other after its own write (strongly consistent), so one of them always sees both.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from batchdrop.events.contract import Usage
from batchdrop.store.child_states import children_ended
from batchdrop.store.costs import JobCost, MonthStanding, month_of
from batchdrop.store.items import Children, JobChange
from batchdrop.store.records import JobRecord, utc_now
from batchdrop.track.batches import TrackResult
from batchdrop.track.ports import TrackStore

KNOWN_COUNTED = 10_000
COUNTED_STATUSES = frozenset({"SUCCEEDED", "FAILED"})
"""Ends Batch reported: a job batchdrop ended on its own word (LOST, a failed upstream step) has no usage."""


class CostLedger(Protocol):  # `batchdrop.store.costs.TeamCosts`
    def count(self, cost: JobCost) -> bool: ...


@runtime_checkable
class MonthReader(Protocol):  # `batchdrop.store.costs.TeamCosts` (given the teams' budgets, it marks crossings)
    def standing(self, cost: JobCost) -> MonthStanding: ...


class CostCounting:
    """Adds each ended job's cost to its team's month, once; tells the dashboard what it added and where
    the month stands."""

    def __init__(self, *, table: TrackStore, ledger: CostLedger, clock: Callable[[], datetime] = utc_now) -> None:
        self.table = table
        self.ledger = ledger
        self.clock = clock
        self._counted: OrderedDict[str, None] = OrderedDict()
        """Jobs this instance counted or found counted (bounded): a later copy of their end costs no write."""

    def job_ended(self, before: JobRecord, change: JobChange | None, result: TrackResult) -> None:
        """A job's end: just applied (`change`), or found applied already (`before` is the job as it is)."""
        job = before if change is None else ended(before, change)
        if job.status not in COUNTED_STATUSES:
            return
        if job.array_size:
            children = self.table.get_children(job.job_id)
            if not all_ended(children, job.array_size):
                return  # its last children's merge counts it (`children_merged`)
            self._count(JobCost.of(job, children.usage), result)
        else:
            self._count(JobCost.of(job), result)

    def children_merged(self, parent: JobRecord, children: Children, result: TrackResult) -> None:
        """An array's children as just merged (or found merged already): once every one has ended, the
        array is counted if it has ended too."""
        if not all_ended(children, parent.array_size or 0):
            return
        job = self.table.get_job(parent.job_id)
        if job is not None and job.status in COUNTED_STATUSES:
            self._count(JobCost.of(job, children.usage), result)

    def _count(self, cost: JobCost, result: TrackResult) -> None:
        if cost.job_id in self._counted:
            return
        counted = self.ledger.count(cost)
        if isinstance(self.ledger, MonthReader):  # after a refused count too: its marks may be missing
            standing = self.ledger.standing(cost)
            result.counts["BudgetCrossings"] += len(standing.crossings)
            if standing.month == month_of(self.clock()):  # a late end of last month is not this month's figure
                result.months[cost.team] = standing
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
