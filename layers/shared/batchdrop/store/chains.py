"""A step's recovery chain (docs/recovery.md) on one line: its first failed job, each recovery with its
numbers, and how the last job ended, e.g.

    attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → succeeded
    40 of 1,000 children ran out of memory with 16 GiB → recovery 1: 40 children with 32 GiB → 40 children succeeded

A step's jobs are linked by `recovers` (each new job names the job it replaces); `chain_line` reads them
from the records, pure. Tracking keeps the line in the run's step summary (`RunStep.story`, which Slack
shows), and `batchdrop status` prints it for each step of a run still going.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from batchdrop.events.contract import failure_told
from batchdrop.platform.recovery import RecoveryDue
from batchdrop.spec.sweep import expand_indices
from batchdrop.store.records import JobRecord
from batchdrop.units import gib

MAX_RECOVERY_CHAIN = 20
"""Replaced jobs followed back from a step's last job (a spec allows a few recoveries)."""


def replaced_jobs(
    read: Callable[[set[str]], Mapping[str, JobRecord]], records: Iterable[JobRecord]
) -> dict[str, JobRecord]:
    """The jobs `records` replaced, and those they replaced, by id: one read (`read`, a batch read of job
    records by id) per link of the longest chain."""
    found: dict[str, JobRecord] = {}
    wanted = {record.recovers for record in records if record.recovers}
    for _ in range(MAX_RECOVERY_CHAIN):
        if not wanted:
            break
        read_now = read(wanted)
        found.update(read_now)
        wanted = {job.recovers for job in read_now.values() if job.recovers and job.recovers not in found}
    return found


def recovered_links(last: JobRecord, replaced: Mapping[str, JobRecord]) -> list[JobRecord]:
    """The failed jobs of the step whose last job is `last` that were replaced because of their own failure
    (each with its `recovery`), oldest first. A later step's job submitted again only because an earlier
    step recovered replaced a job with no recovery of its own: it is not one of them."""
    links: list[JobRecord] = []
    seen: set[str] = set()
    current = last.recovers
    while current is not None and current in replaced and current not in seen:
        seen.add(current)
        job = replaced[current]
        if job.recovery is not None:
            links.append(job)
        current = job.recovers
    return links[::-1]


def left_behind(last: JobRecord, replaced: Mapping[str, JobRecord]) -> str | None:
    """For an array step whose recoveries left failed children behind (they failed otherwise, and were not
    run again: `RecoveryDue.left`): that, in words. Its step has failed, whatever its last job did."""
    count = sum(
        len(expand_indices(job.recovery.left))
        for job in recovered_links(last, replaced)
        if job.recovery is not None and job.recovery.left
    )
    if not count:
        return None
    which, were = ("1 child", "was") if count == 1 else (f"{count:,} children", "were")
    return f"{which} failed otherwise (not out of memory, not reclaimed) and {were} not run again"


def chain_line(last: JobRecord, replaced: Mapping[str, JobRecord]) -> str | None:
    """The step's whole recovery chain on one line, or None for a step that had no recovery."""
    parts: list[str] = []
    for job in recovered_links(last, replaced):
        assert job.recovery is not None  # recovered_links keeps only these
        parts += [_failure(job, job.recovery), _recovery(job.recovery)]
    if last.status == "FAILED" and last.recovery is not None and last.recovered_by is None:
        parts += [_failure(last, last.recovery), _recovery(last.recovery) + " (being submitted)"]
    elif parts:
        parts.append(_outcome(last))
    return " → ".join(parts) or None


def _failure(job: JobRecord, due: RecoveryDue) -> str:
    """`attempt 1: out of memory at 16 GiB`; `40 of 1,000 children ran out of memory with 16 GiB`."""
    if job.array_size and due.children is not None:
        count = len(expand_indices(due.children))
        if due.kind == "spot_fallback":
            return f"{count:,} of {job.array_size:,} children reclaimed on spot queue `{job.queue}`"
        words = f"{count - due.reclaimed:,} of {job.array_size:,} children ran out of memory with "
        words += gib(job.resources.memory_mib)
        words += f", {due.reclaimed:,} reclaimed on spot" if due.reclaimed else ""
        return words + (f" ({len(expand_indices(due.left)):,} failed otherwise)" if due.left else "")
    if due.kind == "spot_fallback":
        return f"reclaimed {due.counts.spot_reclaims} times on spot queue `{job.queue}`"
    return f"attempt {max(job.attempts, 1)}: out of memory at {gib(job.resources.memory_mib)}"


def _recovery(due: RecoveryDue) -> str:
    """`recovery 1 with 32 GiB`; `recovery 1: 40 children with 32 GiB`; `recovery 2 on on-demand queue `x``."""
    where = f"with {gib(due.memory_mib)}" if due.kind == "out_of_memory" else f"on on-demand queue `{due.queue}`"
    if due.children is None:
        return f"recovery {due.number} {where}"
    indices = expand_indices(due.children)
    which = f"child {indices[0]}" if len(indices) == 1 else f"{len(indices):,} children"
    return f"recovery {due.number}: {which} {where}"


def _outcome(job: JobRecord) -> str:
    """How the chain's last job stands: `succeeded`, `40 children succeeded`, `failed (38 succeeded, 2 failed):
    …`, or a status not final yet (`running`)."""
    children = {status.lower(): count for status, count in (job.told_children or {}).items() if count}
    if job.status == "SUCCEEDED":
        total = sum(children.values())
        return f"{total:,} children succeeded" if job.array_size and total else "succeeded"
    status = "cancelled" if job.failure_class == "cancelled" else job.status.lower()
    if children:
        ordered = sorted(children.items(), key=lambda item: (item[0] != "succeeded", item[0]))
        status += " (" + ", ".join(f"{count:,} {name}" for name, count in ordered) + ")"
    words = (
        failure_told(job.failure or job.status_reason, job.recovery_final) if job.status in {"FAILED", "LOST"} else None
    )
    return f"{status}: {words}" if words else status
