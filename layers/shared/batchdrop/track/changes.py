"""A job's new state as tracking computes it from Batch's word, or on batchdrop's own verdict (a failed
upstream step, a job Batch forgot), applied with one conditional write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from batchdrop.events.contract import LogLink
from batchdrop.gateways.log_links import log_url
from batchdrop.platform.recovery import decide, decide_children
from batchdrop.spec.sweep import expand_indices
from batchdrop.store.child_states import children_ended, failed_children
from batchdrop.store.items import JobChange
from batchdrop.store.records import TERMINAL, AttemptEnd, JobRecord, Transition, order_key, timestamp, utc_now
from batchdrop.track.batch_events import JobDetail, log_streams, run_seconds
from batchdrop.track.batches import TryAgainSoon
from batchdrop.track.failures import Failure, attempt_ends, classify
from batchdrop.track.ports import TrackStore
from batchdrop.track.usage import requested_usage


class StateChanges:
    """Builds and applies a job's state changes: the fields each status sets, the log links, and the
    statuses it passed through (the outbox entry the publish function tells)."""

    def __init__(self, *, table: TrackStore, region: str, clock: Callable[[], datetime] = utc_now) -> None:
        self.table = table
        self.region = region
        self.clock = clock

    def change(
        self,
        detail: JobDetail,
        at: datetime,
        *,
        passed: list[Transition],
        status: str | None = None,
        reason: str | None = None,
        stored: JobRecord | None = None,
    ) -> JobChange:
        """The job's new state, and the statuses it passed through to get there: the outbox entry
        (`JobRecord.passed`) written with it, from which the publish function tells what the spec asked.
        A job that FAILED by Batch's word carries tracking's recovery decision, made from its `stored`
        record (its policy, memory, queue and chain's counts): written with the FAILED status, in the same
        conditional update, a decision is never lost nor made twice."""
        status = status or detail.status
        attempts = detail.attempt_count
        said = detail.statusReason or (detail.last_attempt_reason if status in TERMINAL else None)
        fields: dict[str, Any] = {  # Batch's reason; an ended job's is often only its last attempt's
            "status_reason": reason if reason is not None else said,
            "log_links": [link.model_dump(mode="json") for link in self.log_links(detail)],
            "passed": [transition.model_dump(mode="json", exclude_none=True) for transition in passed],
        }
        if detail.exit_code is not None:
            fields["exit_code"] = detail.exit_code
        ends = attempt_ends(detail)
        if ends:
            fields["attempt_ends"] = [end.model_dump(mode="json", exclude_none=True) for end in ends]
        if status in TERMINAL:
            fields["finished_at"] = timestamp(at)
            fields["expires_at"] = self.table.history_expiry(at)
            seconds = run_seconds(detail)
            if seconds:
                fields["duration_seconds"] = seconds
            if detail.arrayProperties and detail.arrayProperties.statusSummary:
                fields["status_summary"] = dict(detail.arrayProperties.statusSummary)
            usage = requested_usage(detail, seconds)
            if usage is not None and not detail.arrayProperties:
                fields["usage"] = usage.model_dump(mode="json")
        if status == "FAILED" and reason is None:
            failure = classify(detail)
            if failure.kind == "dependency" and stored is not None and stored.cancelled_by:
                # Its run's cancel asked for it too, but Batch failed it first for the job before it, which
                # the same cancel stopped: the person cancelled it, nothing failed.
                failure = Failure("cancelled", f"cancelled with its run by {stored.cancelled_by}")
            fields["failure_class"], fields["failure"] = failure.kind, failure.words
            if stored is not None:
                # A cancelled array is not recovered: its end does not wait for its children's.
                waits = stored.array_size and failure.kind != "cancelled" and _may_recover(stored)
                states = self._ended_children(stored) if waits else None
                fields.update(recovery_fields(stored, failure.kind, ends, children=states))
        elif status in {"FAILED", "LOST"}:  # batchdrop's own verdict: an upstream failure, a lost job
            fields["failure_class"] = "lost" if status == "LOST" else "dependency"
            fields["failure"] = reason
        return JobChange(
            job_id=detail.jobId,
            status=status,
            order=order_key(attempts, status, at),
            at=timestamp(at),
            seen_at=timestamp(self.clock()),
            attempts=attempts,
            fields=fields,
        )

    def _ended_children(self, stored: JobRecord) -> str:
        """A failed array's children, once tracking has merged every child's end: the last children's
        events may come in the same batch as their parent's (merged after it) or after it; until they
        are merged, the parent's event goes back to the queue and is tried again."""
        states = self.table.get_children(stored.job_id).states
        if children_ended(states, stored.array_size or 0) < (stored.array_size or 0):
            raise ChildrenNotAllTold(f"array {stored.job_id}: not every child's end is merged yet")
        return states

    def log_links(self, detail: JobDetail) -> list[LogLink]:
        return [
            LogLink(
                attempt=attempt,
                container=container,
                log_group=group,
                log_stream=stream,
                url=log_url(self.region, group, stream),
            )
            for attempt, container, group, stream in log_streams(detail)
        ]

    def end_on_our_word(self, record: JobRecord, status: str, reason: str, now: datetime) -> JobRecord | None:
        """End a job on batchdrop's own verdict (no Batch event says so): its state, its history and a
        `job.status` event (told from the stream). The job as it was before, if this ended it; None if it
        had already ended."""
        detail = JobDetail(
            jobId=record.job_id,
            jobName=record.job_name,
            jobQueue=record.queue_arn,
            status="FAILED",
            statusReason=reason,
        )
        transition = Transition(status=status, at=now, reason=reason, attempt=record.attempts)
        change = self.change(detail, now, status=status, reason=reason, passed=[transition])
        applied = self.table.apply_job_state(change)
        self.table.add_transitions([(record.job_id, transition)])
        if not applied.changed or applied.before is None:
            return None
        return applied.before


class ChildrenNotAllTold(TryAgainSoon):
    """A failed array's end waits until its children's are merged: it is tried again soon."""


def _may_recover(stored: JobRecord) -> bool:
    policy = stored.recovery_policy
    return policy is not None and (policy.out_of_memory_times > 0 or policy.fallback_queue is not None)


def recovery_fields(
    stored: JobRecord, failure_class: str, ends: list[AttemptEnd], *, children: str | None = None
) -> dict[str, Any]:
    """What a failed job's record says of its recovery: `recovery` (the new job batchdrop is to submit),
    `recovery_final` (why a failure its spec asked to recover is final, in numbers), or nothing. An array
    job recovers its failed children (from their `children` states, as kept), not itself: the decision
    names them by their original index."""
    if stored.array_size:
        if children is None:
            return {}
        originals = expand_indices(stored.child_indices) if stored.child_indices else None
        decision = decide_children(
            stored.recovery_policy,
            failed={
                originals[index] if originals else index: failed
                for index, failed in failed_children(children).items()
                if index < stored.array_size
            },
            size=stored.array_size,
            memory_mib=stored.resources.memory_mib,
            queue=stored.queue,
            queue_arn=stored.queue_arn,
            counts=stored.recovery_counts,
        )
    else:
        decision = decide(
            stored.recovery_policy,
            failure_class=failure_class,
            memory_mib=stored.resources.memory_mib,
            queue=stored.queue,
            queue_arn=stored.queue_arn,
            counts=stored.recovery_counts,
            reclaims=sum(end.failure_class == "spot_reclaim" for end in ends if end.node is None),
        )
        if decision.due is not None and stored.child_indices:  # the single job that recovers one child
            decision = decision.model_copy(
                update={"due": decision.due.model_copy(update={"children": stored.child_indices})}
            )
    if decision.due is not None:
        return {"recovery": decision.due.model_dump(mode="json")}
    if decision.final is not None:
        return {"recovery_final": decision.final}
    return {}
