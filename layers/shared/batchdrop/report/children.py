"""An array's (a sweep's) children as a report shows them: counts by status, children by attempts made,
the distribution of their run times (the histogram tracking keeps beside their states), and the failed
ones by original index with their sweep values, from the two characters a child tracking keeps
(`batchdrop.track.arrays.CHILD_CODES`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from batchdrop.notify.block_kit import human_duration
from batchdrop.spec.sweep import compact_indices, expand_indices
from batchdrop.store.child_states import CHILD_STATUS, bucket_middle, failed_children, run_time_quantile
from batchdrop.store.items import Children
from batchdrop.store.records import JobRecord

FAILURE_WORDS = {
    "out_of_memory": "ran out of memory",
    "spot_reclaim": "its spot instance was reclaimed",
    "other": "failed (its log says why)",
}
"""A failed child's kind (`track.arrays.failed_children`), in words."""
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class FailedChild:
    index: int
    """Its index in this array job."""
    original: int
    """Its index in the sweep (a recovery's children keep the original child's)."""
    kind: str
    attempts: int
    log: tuple[str, str] | None = None
    """The log group and stream of the attempt that ended it, where tracking kept them (`Children.failed_logs`:
    the lowest indices only; none for a child that never started, nor in items kept before logs were)."""

    @property
    def words(self) -> str:
        return FAILURE_WORDS.get(self.kind, FAILURE_WORDS["other"])


@dataclass(frozen=True)
class ChildSummary:
    size: int
    counts: dict[str, int]
    """Children by status; `not heard of` for those tracking has no event of yet."""
    by_attempts: dict[int, int] = field(default_factory=dict)
    """Children by the attempts they made (ended ones), where the records say."""
    failed: list[FailedChild] = field(default_factory=list)
    from_states: bool = True
    """False: only the parent's counts were there (no children item), so no attempts nor failed indices."""
    run_times: dict[int, int] = field(default_factory=dict)
    """Ended children by their last attempt's run time, in buckets (`store.child_states.run_time_bucket`)."""

    def run_time_words(self) -> str | None:
        """`median about 4 min, 90th percentile about 11 min (of 958 children, …)`; None with none counted."""
        median, p90 = run_time_quantile(self.run_times, 0.5), run_time_quantile(self.run_times, 0.9)
        if median is None or p90 is None:
            return None
        counted = sum(self.run_times.values())
        return (
            f"median about {human_duration(bucket_middle(median))}, 90th percentile about "
            f"{human_duration(bucket_middle(p90))} (of {counted:,} {'child' if counted == 1 else 'children'}, "
            "each its last attempt; read from buckets, so within about a fifth)"
        )

    def failed_ranges(self) -> dict[str, str]:
        """Each failure kind's original indices, in compact ranges (`3,7,10-14`)."""
        grouped: dict[str, list[int]] = {}
        for child in self.failed:
            grouped.setdefault(child.kind, []).append(child.original)
        return {kind: compact_indices(sorted(indices)) for kind, indices in grouped.items()}


def summarize_children(job: JobRecord, children: Children | None) -> ChildSummary:
    """What the report shows of an array job's children: from their states when tracking kept them,
    else from the counts on the job's record."""
    size = job.array_size or 0
    if children is None or not children.states:
        return ChildSummary(size=size, counts=dict(job.told_children or {}), from_states=False)
    states = children.states
    counts: Counter[str] = Counter()
    by_attempts: Counter[int] = Counter()
    for index in range(size):
        attempts, code = states[2 * index : 2 * index + 1], states[2 * index + 1 : 2 * index + 2]
        status = CHILD_STATUS.get(code, "not heard of")
        counts[status] += 1
        if status in {"SUCCEEDED", "FAILED"}:
            by_attempts[max(_BASE36.find(attempts), 0)] += 1
    originals = _originals(job)
    failed = [
        FailedChild(
            index=index,
            original=originals[index] if index < len(originals) else index,
            kind=kind,
            attempts=attempts,
            log=children.failed_logs.get(index),
        )
        for index, (kind, attempts) in sorted(failed_children(states[: 2 * size]).items())
    ]
    return ChildSummary(
        size=size,
        counts=dict(sorted(counts.items())),
        by_attempts=dict(sorted(by_attempts.items())),
        failed=failed,
        run_times=dict(children.run_times),
    )


def _originals(job: JobRecord) -> list[int]:
    """A recovery's children's original indices, by new index; none for a sweep's first array."""
    if not job.child_indices:
        return []
    try:
        return expand_indices(job.child_indices)
    except ValueError:  # a record written wrong: show the array's own indices rather than none
        return []
