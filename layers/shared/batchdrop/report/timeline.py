"""A run's timeline as bars: one per attempt of each job, each of a queued and a running segment, from
the job's history (statuses with Batch's times) and its attempts' ends (when each started and stopped).

A transition's `attempt` counts the attempts that had finished when it happened: attempt k's RUNNABLE
and RUNNING carry k-1, its SUCCEEDED or FAILED carries k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from batchdrop.store.records import TERMINAL, AttemptEnd, JobRecord, RunRecord, Transition

Outcome = Literal["succeeded", "failed", "cancelled", "running", "queued"]
Phase = Literal["queued", "running"]


@dataclass(frozen=True)
class Segment:
    phase: Phase
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 0.0)


@dataclass(frozen=True)
class Bar:
    """One attempt of one job on the timeline."""

    job: JobRecord
    attempt: int
    """From 1."""
    outcome: Outcome
    segments: list[Segment]
    end: AttemptEnd | None
    """How the attempt ended, where Batch said (None: still going, or it never ran)."""
    last: bool
    """The job's latest attempt."""

    @property
    def label(self) -> str:
        return f"{self.job.step} · attempt {self.attempt}"

    @property
    def running_seconds(self) -> float:
        return sum(segment.seconds for segment in self.segments if segment.phase == "running")

    @property
    def queued_seconds(self) -> float:
        return sum(segment.seconds for segment in self.segments if segment.phase == "queued")


def attempt_bars(job: JobRecord, *, now: datetime) -> list[Bar]:
    """The job's attempts as bars, oldest first; the last one of a job still going ends `now`."""
    # A multi-node job's nodes' ends (`node <i> SUCCEEDED`) are not attempts of the job: its own statuses are.
    history = [t for t in job.ordered_history() if t.attempt_end is None or t.attempt_end.node is None]
    ends = {end.attempt: end for end in job.attempt_ends if end.node is None}
    finished = [transition for transition in history if transition.status in TERMINAL]
    made = max(
        [1, job.attempts, *ends]
        + [transition.attempt + 1 for transition in history if transition.status not in TERMINAL]
        + [transition.attempt for transition in finished]
    )
    ended_at = finished[-1].at if finished else job.finished_at
    bars: list[Bar] = []
    previous_end: datetime | None = None
    for attempt in range(1, made + 1):
        own = [t for t in history if t.status not in TERMINAL and t.attempt == attempt - 1]
        end = ends.get(attempt)
        last = attempt == made
        queued_from = _queued_from(job, attempt, own, previous_end, ends.get(attempt - 1))
        running_from = (end.started_at if end else None) or _first(own, "RUNNING")
        stopped = (end.stopped_at if end else None) or (ended_at if last else None)
        if stopped is None:
            stopped = now if last and job.status not in TERMINAL else (running_from or queued_from)
        queued_from = min(queued_from, running_from or stopped, stopped)  # two clocks: never a negative bar
        segments = [Segment("queued", queued_from, running_from or stopped)]
        if running_from is not None:
            segments.append(Segment("running", running_from, max(stopped, running_from)))
        bars.append(
            Bar(job=job, attempt=attempt, outcome=_outcome(job, end, last), segments=segments, end=end, last=last)
        )
        previous_end = max(stopped, running_from or stopped)
    return bars


def _queued_from(
    job: JobRecord, attempt: int, own: list[Transition], previous_end: datetime | None, before: AttemptEnd | None
) -> datetime:
    if attempt == 1:
        return min([job.submitted_at, *(t.at for t in own)])
    candidates = [t.at for t in own]
    if before is not None and before.stopped_at is not None:
        candidates.append(before.stopped_at)
    if previous_end is not None:
        candidates.append(previous_end)
    return min(candidates) if candidates else job.submitted_at


def _first(transitions: Sequence[Transition], status: str) -> datetime | None:
    return next((t.at for t in transitions if t.status == status), None)


def _outcome(job: JobRecord, end: AttemptEnd | None, last: bool) -> Outcome:
    if last and job.status == "FAILED" and job.failure_class == "cancelled":
        return "cancelled"
    if end is not None and not last:
        return "failed"  # Batch retries only a failed attempt
    if end is not None and (end.failure or end.failure_class):
        return "failed"
    if not last:
        return "failed"
    if job.status == "SUCCEEDED":
        return "succeeded"
    if job.status in TERMINAL:
        return "failed"
    return "running" if job.status == "RUNNING" else "queued"


def time_span(run: RunRecord, bars: Sequence[Bar], *, now: datetime) -> tuple[datetime, datetime]:
    """Where the timeline starts (the run's receipt, or its first bar) and ends (its last bar, or now)."""
    starts = [run.received_at, *(segment.start for bar in bars for segment in bar.segments)]
    ends = [segment.end for bar in bars for segment in bar.segments]
    if run.finished_at is not None:
        ends.append(run.finished_at)
    elif run.status not in {"rejected", "succeeded", "failed", "cancelled"}:
        ends.append(now)
    start = min(starts)
    return start, max([start, *ends])
