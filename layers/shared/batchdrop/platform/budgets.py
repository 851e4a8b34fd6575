"""A run's worst case in dollars, and the team budgets it is checked against; and its expected case
(docs/budgets.md).

Pure arithmetic over a plan: every job and array child × its timeout × its requested resources × its
queue's prices × the attempts it may make, recoveries included: Batch's attempts of the job itself, each
out-of-memory recovery its spec allows (with the memory grown as recovery grows it, up to the queue's
largest instance) and a spot fallback's job on the fallback queue's prices. Each step's arithmetic is
kept in words, so a rejection can show it. The expected case is the median run time of each step's
earlier jobs (read by the caller) × the plan's resources and prices. No AWS, no clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from batchdrop.errors import Problem
from batchdrop.platform.config import BudgetConfig, QueuePrice
from batchdrop.platform.costs import held_usage, money_words, usage_cost
from batchdrop.platform.planning import Plan, PlannedJob
from batchdrop.spec.model import Resources
from batchdrop.units import gib

SHOWN_LINES = 4
"""A rejection shows this many of the dearest lines of arithmetic; the plan shows them all."""


@dataclass(frozen=True)
class CostLine:
    """One job of a step's chain at its worst: the job itself, a recovery, a fallback."""

    usd: float | None
    """None: its queue has no prices."""
    words: str


@dataclass(frozen=True)
class StepWorst:
    """A step's worst case: the sum of its lines, or unbounded (no timeout)."""

    step: str
    lines: tuple[CostLine, ...] = ()
    bounded: bool = True

    @property
    def usd(self) -> float | None:
        """Dollars at worst; None when it has no timeout or none of its lines has prices."""
        priced = [line.usd for line in self.lines if line.usd is not None]
        return sum(priced) if self.bounded and priced else None

    def words(self) -> str:
        if not self.bounded:
            return f"`{self.step}`: no timeout, so no worst case"
        return "; ".join(line.words for line in self.lines)


@dataclass(frozen=True)
class WorstCase:
    steps: tuple[StepWorst, ...]

    @property
    def usd(self) -> float:
        """Dollars at worst of the steps that have a bound and prices."""
        return sum(step.usd or 0.0 for step in self.steps)

    @property
    def unbounded(self) -> list[str]:
        return [step.step for step in self.steps if not step.bounded]

    @property
    def unpriced(self) -> list[str]:
        return [step.step for step in self.steps if step.bounded and any(line.usd is None for line in step.lines)]

    def dearest(self, count: int = SHOWN_LINES) -> str:
        """The arithmetic of the dearest lines, and how many more there are."""
        lines = sorted(
            (line for step in self.steps for line in step.lines if line.usd is not None),
            key=lambda line: line.usd or 0.0,
            reverse=True,
        )
        shown = "; ".join(line.words for line in lines[:count])
        if len(lines) > count:
            shown += f"; and {len(lines) - count} smaller"
        return shown


def worst_case(plan: Plan, *, skip: Collection[str] = ()) -> WorstCase:
    """The plan's worst case; `skip`: steps that will not run (a resumed run's reused steps)."""
    return WorstCase(tuple(step_worst(job, plan.prices) for job in plan.jobs if job.step not in skip))


def step_worst(job: PlannedJob, prices: dict[str, QueuePrice]) -> StepWorst:
    timeout = job.request.get("timeout", {}).get("attemptDurationSeconds")
    if timeout is None:
        return StepWorst(job.step, bounded=False)
    minutes = int(timeout) // 60
    attempts = int(job.request.get("retryStrategy", {}).get("attempts", 1))
    memory = job.resources.memory_mib
    lines = [
        _line(
            job, f"`{job.step}`", minutes=minutes, memory_mib=memory, attempts=attempts, queue=job.queue, prices=prices
        )
    ]
    policy = job.recovery
    if policy is None:
        return StepWorst(job.step, tuple(lines))
    fallback = policy.fallback_queue
    limit = max(policy.max_memory_mib, policy.fallback_max_memory_mib or 0) if fallback else policy.max_memory_mib
    for number in range(1, policy.out_of_memory_times + 1):
        if memory >= limit:
            break
        memory = min(math.ceil(memory * policy.grow), limit)
        # a recovery may run after a fallback: on whichever of the two queues is dearer at this size
        queue = _dearer(job, memory, (job.queue, fallback) if fallback else (job.queue,), prices)
        label = f"`{job.step}` out of memory, recovery {number} of {policy.out_of_memory_times}"
        lines.append(
            _line(job, label, minutes=minutes, memory_mib=memory, attempts=policy.attempts, queue=queue, prices=prices)
        )
    if fallback is not None and policy.spot_fallback_after is not None:
        left = max(1, policy.attempts - policy.spot_fallback_after)
        fallback_memory = min(memory, policy.fallback_max_memory_mib or memory)
        label = f"`{job.step}` on fallback `{fallback}`"
        lines.append(
            _line(job, label, minutes=minutes, memory_mib=fallback_memory, attempts=left, queue=fallback, prices=prices)
        )
    return StepWorst(job.step, tuple(lines))


def _dearer(job: PlannedJob, memory_mib: int, queues: tuple[str, ...], prices: dict[str, QueuePrice]) -> str:
    def hourly(queue: str) -> float:
        price = prices.get(queue)
        return _hourly(job.resources, memory_mib, price) if price else -1.0

    return max(queues, key=hourly)


def _hourly(resources: Resources, memory_mib: int, price: QueuePrice) -> float:
    return usage_cost(held_usage(resources, 1.0, memory_mib=memory_mib), price)


def _line(
    job: PlannedJob,
    label: str,
    *,
    minutes: int,
    memory_mib: int,
    attempts: int,
    queue: str,
    prices: dict[str, QueuePrice],
) -> CostLine:
    count = job.array_size or job.nodes or 1  # a multi-node job's every node costs
    jobs = _jobs_words(job)
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    price = prices.get(queue)
    if price is None:
        return CostLine(None, f"{label}: {jobs} × {duration_words(minutes)} on `{queue}`, which has no prices")
    usd = count * minutes / 60 * _hourly(job.resources, memory_mib, price) * attempts
    each = _rates_words(job.resources, memory_mib, price)
    words = f"{label}: {jobs} × {duration_words(minutes)} × {each} × {tries} = up to {money_words(usd)}"
    return CostLine(usd, words)


def _jobs_words(job: PlannedJob) -> str:
    count = job.array_size or job.nodes or 1
    return f"{count:,} children" if job.array_size else f"{count:,} nodes" if job.nodes else "1 job"


def _rates_words(resources: Resources, memory_mib: int, price: QueuePrice) -> str:
    """'(1 GPU at $0.75/GPU-hour + 8 vCPUs at $0.04/vCPU-hour + 32 GiB at $0.0045/GiB-hour)'."""
    parts = [
        (resources.gpus, "GPU", price.gpu_hour, f"{resources.gpus} GPU" + ("s" if resources.gpus > 1 else "")),
        (resources.vcpus, "vCPU", price.vcpu_hour, f"{resources.vcpus:g} vCPU" + ("s" if resources.vcpus != 1 else "")),
        (memory_mib, "GiB", price.gib_hour, gib(memory_mib)),
    ]
    rates = [f"{amount} at {rate_words(rate)}/{unit}-hour" for held, unit, rate, amount in parts if held and rate]
    each = " + ".join(rates) if rates else "nothing priced"
    return f"({each})" if len(rates) > 1 else each


def duration_words(minutes: int) -> str:
    """90 -> '90 min'; 480 -> '8 h'."""
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60:,} h"
    return f"{minutes:,} min"


def rate_words(usd: float) -> str:
    """A unit price, to the hundredth of a cent where it needs it: '$1.10', '$0.0016'."""
    text = f"{usd:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${int(whole):,}.{cents.ljust(2, '0')}"


EARLIER_RUNS = 20
"""The expected case is read from at most this many of the spec's newest runs."""


@dataclass(frozen=True)
class StepExpected:
    """A step's expected case: its earlier jobs' median run time × this plan's resources and prices."""

    step: str
    samples: int = 0
    """The earlier jobs of the step the median is of (0: none, so no expected case)."""
    minutes: float | None = None
    """Their median run time: per job, or per child of an array (per node of a multi-node job)."""
    usd: float | None = None
    """None: no earlier jobs, or its queue has no prices."""
    words: str = ""


@dataclass(frozen=True)
class ExpectedCase:
    steps: tuple[StepExpected, ...]

    @property
    def known(self) -> bool:
        """Some step ran before: `usd` means something (for those steps)."""
        return any(step.samples for step in self.steps)

    @property
    def usd(self) -> float:
        """Dollars expected of the steps that ran before and have prices."""
        return sum(step.usd or 0.0 for step in self.steps)

    @property
    def unknown(self) -> list[str]:
        """Steps with no earlier job to go by."""
        return [step.step for step in self.steps if not step.samples]


def expected_case(
    plan: Plan, run_minutes: Mapping[str, Sequence[float]], *, skip: Collection[str] = ()
) -> ExpectedCase:
    """The plan's expected case: for each step, the median of `run_minutes[step]` (its earlier jobs' run
    times, per job or child, every attempt's) × its jobs, children or nodes × its resources at its queue's
    prices. No retries or recoveries are added: the earlier jobs' own attempts are in their run times."""
    return ExpectedCase(
        tuple(
            _step_expected(job, run_minutes.get(job.step, ()), plan.prices) for job in plan.jobs if job.step not in skip
        )
    )


def _step_expected(job: PlannedJob, samples: Sequence[float], prices: dict[str, QueuePrice]) -> StepExpected:
    if not samples:
        return StepExpected(job.step, words=f"`{job.step}`: no earlier run of this step")
    minutes = statistics.median(samples)
    ran = f"median {run_time_words(minutes)} of {len(samples)} earlier job{'s' if len(samples) > 1 else ''}"
    price = prices.get(job.queue)
    if price is None:
        words = f"`{job.step}`: {ran} on `{job.queue}`, which has no prices"
        return StepExpected(job.step, len(samples), minutes, None, words)
    count = job.array_size or job.nodes or 1
    usd = count * usage_cost(held_usage(job.resources, minutes / 60), price)
    each = _rates_words(job.resources, job.resources.memory_mib, price)
    words = f"`{job.step}`: {_jobs_words(job)} × {ran} × {each} = about {money_words(usd)}"
    return StepExpected(job.step, len(samples), minutes, usd, words)


def run_time_words(minutes: float) -> str:
    """A median run time: '40 s', '42 min', '2.5 h'."""
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 120:
        return f"{minutes:,.0f} min"
    return f"{minutes / 60:,.1f} h"


def budget_problems(
    worst: WorstCase,
    *,
    team: str,
    budget: BudgetConfig | None,
    month: str | None = None,
    spent_usd: float | None = None,
) -> list[Problem]:
    """Why the run may not be submitted under its team's budget: its worst case over `per_run_usd`, or over
    what is left of `monthly_usd` this month (`spent_usd`: the month so far; None offline: not checked)."""
    if budget is None:
        return []
    total = worst.usd
    problems: list[Problem] = []
    if budget.per_run_usd is not None and total > budget.per_run_usd:
        problems.append(
            Problem(
                path="",
                code="over_run_budget",
                message=f"this run may cost up to {money_words(total)} ({worst.dearest()}); team `{team}` allows "
                f"{money_words(budget.per_run_usd)} per run: lower array_size or timeout_minutes, "
                "or ask the platform team",
            )
        )
    if budget.monthly_usd is not None and spent_usd is not None:
        left = max(0.0, budget.monthly_usd - spent_usd)
        if total > left:
            problems.append(
                Problem(
                    path="",
                    code="over_monthly_budget",
                    message=f"this run may cost up to {money_words(total)}; team `{team}` has spent "
                    f"{money_words(spent_usd)} of its {money_words(budget.monthly_usd)} for {month or 'this month'}, "
                    f"so {money_words(left)} is left: lower array_size or timeout_minutes, wait for next month, "
                    "or ask the platform team",
                )
            )
    return problems
