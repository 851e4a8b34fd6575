"""Cost in dollars: what a job used (vCPU-, GiB- and GPU-hours) × its queue's unit prices (docs/spec.md, `price`).

Pure arithmetic over what batchdrop already records: a job's usage is its requested resources × its run
time, summed over its attempts (and, for an array, over its children, on the parent); the prices are the
platform team's estimates, copied from its queue onto the job's record when it was submitted
(`JobRecord.price`), so a cost never depends on the config as it is later. The results are estimates,
not the bill.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from batchdrop.events.contract import Usage
from batchdrop.platform.config import PlatformConfig, QueuePrice
from batchdrop.spec.model import Resources


class PricedJob(Protocol):
    """What a cost is made of: a job's record (`batchdrop.store.records.JobRecord`) is one."""

    @property
    def job_id(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    @property
    def price(self) -> QueuePrice | None: ...

    @property
    def told_usage(self) -> Usage | None: ...


def queue_prices(config: PlatformConfig) -> dict[str, QueuePrice]:
    """Each queue's prices by its name, for the queues that have them: what planning hands on to the
    jobs' records (a recovery's new job takes the prices of the queue it is submitted to)."""
    return {name: queue.price for name, queue in config.queues.items() if queue.price is not None}


def held_usage(resources: Resources, hours: float, *, memory_mib: int | None = None) -> Usage:
    """What holding these resources for `hours` uses (`memory_mib`: a recovery's grown memory instead of the
    resources' own): what a worst or an expected case is priced from."""
    memory = resources.memory_mib if memory_mib is None else memory_mib
    return Usage(
        vcpu_hours=resources.vcpus * hours, memory_gib_hours=memory / 1024 * hours, gpu_hours=resources.gpus * hours
    )


def usage_cost(usage: Usage, price: QueuePrice) -> float:
    """Usage × unit prices, in US dollars."""
    return (
        usage.vcpu_hours * price.vcpu_hour + usage.memory_gib_hours * price.gib_hour + usage.gpu_hours * price.gpu_hour
    )


def cost_of(job: PricedJob) -> float | None:
    """A job's cost in US dollars so far: every attempt's, and an array's children's; None when its queue
    has no prices. A job that has used nothing batchdrop knows of (not started, failed upstream) cost 0."""
    if job.price is None:
        return None
    return usage_cost(job.told_usage or Usage(), job.price)


@dataclass(frozen=True)
class RunCost:
    """A run's cost: its jobs' that have prices, and how many it has that do not."""

    usd: float = 0.0
    unpriced_jobs: int = 0
    """Jobs counted whose queue has no prices: `usd` leaves them out."""
    priced_jobs: int = 0

    @property
    def known(self) -> bool:
        """True when some job had prices: `usd` then means something (in part, if `unpriced_jobs`)."""
        return self.priced_jobs > 0

    def words(self) -> str:
        """'$12.40'; '$12.40 (and 2 jobs on queues without prices)'; 'unknown (no prices)'."""
        if not self.known:
            return "unknown (no prices)"
        if self.unpriced_jobs:
            plural = "job" if self.unpriced_jobs == 1 else "jobs"
            return f"{money_words(self.usd)} (and {self.unpriced_jobs} {plural} on queues without prices)"
        return money_words(self.usd)


def run_cost(run_id: str, jobs: Iterable[PricedJob]) -> RunCost:
    """What a run cost: pass its steps' jobs and the jobs they replaced (recoveries ran too, and are
    counted); a job another run submitted (a step a resumed run reuses: the earlier run paid for it) is
    left out, and a job given twice counts once."""
    usd, priced, unpriced = 0.0, 0, 0
    seen: set[str] = set()
    for job in jobs:
        if job.run_id != run_id or job.job_id in seen:
            continue
        seen.add(job.job_id)
        cost = cost_of(job)
        if cost is None:
            unpriced += 1
        else:
            usd += cost
            priced += 1
    return RunCost(usd=usd, unpriced_jobs=unpriced, priced_jobs=priced)


def money_words(usd: float) -> str:
    """Dollars as people read them: '$12.40', '$1,234.50', '<$0.01' for a cost under a cent, '$0.00'."""
    if 0 < usd < 0.01:
        return "<$0.01"
    return f"${usd:,.2f}"


def told_usd(usd: float) -> float:
    """A cost as events tell it: to a hundredth of a cent (a short job costs less than a cent)."""
    return round(usd, 4)
