"""Following every job batchdrop submitted (DESIGN.md §6): Batch's events, in any order, at least once.

`Tracker.track` takes a batch of Batch events (from the tracking queue, or
made by `Reconciler` from DescribeJobs) and applies them:

- **Jobs.** A job's events in the batch are coalesced into one conditional
  update ordered by (attempts, status rank, time): a stale or duplicate event
  never overwrites a newer state, whichever Lambda instance processes it, and
  a finished job stays finished. Every transition goes into the history once.
- **Array children** (`<parent>:<index>`) are not records of their own:
  their latest states live in a few chunk items under the parent and the
  parent keeps per-status counts, so a batch of 100 child events costs a
  handful of writes, not 100.
- **Runs** are settled when one of their jobs first leaves SUBMITTED
  (`running`) or finishes (`succeeded` or `failed` once all have); when a step
  fails, the steps that wait for it are failed with that reason.
- **Telling** is not done here: each state change carries the statuses it
  passed through (`JobRecord.passed`), and a stuck report its advice, in the
  same conditional write; the publish function tells them from the table's
  stream (`batchdrop.publish.teller`), so what is recorded is always told.

Events of jobs batchdrop did not submit are counted and skipped. An event
whose job is tagged as batchdrop's but not yet recorded (its submit function
has not written it yet) fails, and SQS brings it back a little later.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batchdrop.events.contract import LogLink, Usage
from batchdrop.gateways.batch import BatchGateway
from batchdrop.platform.source import PlatformConfigSource
from batchdrop.spec.model import Resources
from batchdrop.store.items import Children, JobChange
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import TERMINAL, JobRecord, RunRecord, Transition, timestamp, utc_now
from batchdrop.track.batch_events import (
    BatchEvent,
    JobDetail,
    log_streams,
    log_url,
    order_key,
    run_seconds,
)
from batchdrop.track.failures import classify, stuck_advice

logger = logging.getLogger(__name__)

KNOWN_ORDERS = 100_000
"""Jobs whose newest order this instance remembers (~100 bytes each)."""
KNOWN_ARRAYS = 1_000
"""Array jobs whose record (size, resources) this instance keeps."""
CHILD_CODES = {
    "SUBMITTED": "0",
    "PENDING": "1",
    "RUNNABLE": "2",
    "STARTING": "3",
    "RUNNING": "4",
    "SUCCEEDED": "5",
    "FAILED": "6",
}
CHILD_STATUS = {code: status for status, code in CHILD_CODES.items()}
"""An array's children are kept in one string, two characters a child: its attempts (base 36) and
its status (by rank), so that a later state sorts higher and 10,000 children are one 20 KB item,
read and written once per batch. `..` is a child not heard of yet."""
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
OWNED_TAG = "batchdrop:run-id"
FINISHED_RUN = frozenset({"succeeded", "failed", "cancelled", "rejected"})


@dataclass(frozen=True)
class Delivery:
    message_id: str
    event: BatchEvent


class NotYetRecorded(Exception):  # control flow: the message is retried later
    """The job is batchdrop's (its tags say so) but its record is not written yet."""


@dataclass
class TrackResult:
    failed: set[str] = field(default_factory=set)
    """Message ids to return to the queue."""
    unrecorded: set[str] = field(default_factory=set)
    """Of those, the events of jobs whose records are not written yet: worth retrying soon."""
    counts: Counter[str] = field(default_factory=Counter)
    ended: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Jobs that reached SUCCEEDED or FAILED, by (team, queue, status): the dashboard's outcomes."""


class Tracker:
    def __init__(
        self,
        *,
        table: JobStates,
        config: PlatformConfigSource,
        region: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table = table
        self.config = config
        self.region = region
        self.clock = clock
        self._transitions: list[tuple[str, Transition, list[str]]] = []
        self._known_orders: OrderedDict[str, str] = OrderedDict()
        self._seen: list[tuple[str, str | None, list[str]]] = []
        """This batch's (job, newest stored order, messages): known only once the batch handled them whole."""
        self._arrays: OrderedDict[str, JobRecord] = OrderedDict()

    # ------------------------------------------------------------------ the batch

    def track(self, deliveries: Iterable[Delivery]) -> TrackResult:
        result = TrackResult()
        jobs: dict[str, list[Delivery]] = defaultdict(list)
        children: dict[str, list[Delivery]] = defaultdict(list)
        blocked: list[Delivery] = []
        for delivery in deliveries:
            detail = delivery.event.detail
            (children[detail.parent_id] if detail.is_child else jobs[detail.jobId]).append(delivery)
            if delivery.event.blocked:
                blocked.append(delivery)
        settle: dict[str, JobRecord] = {}
        for group in jobs.values():
            with _returned_on_failure(result, group):
                self._apply_job(group, result, settle)
        for parent_id, group in children.items():
            with _returned_on_failure(result, group):
                self._apply_children(parent_id, group, result)
        for delivery in blocked:
            with _returned_on_failure(result, [delivery]):
                self._report_blocked(delivery, result)
        self._settle_runs(list(settle.values()), jobs, result)
        transitions, self._transitions = self._transitions, []
        try:
            self.table.add_transitions((job_id, transition) for job_id, transition, _ in transitions)
        except Exception:
            logger.exception("history could not be written")
            result.failed.update(message_id for _, _, messages in transitions for message_id in messages)
        seen, self._seen = self._seen, []
        for job_id, order, messages in seen:
            # Only what was handled whole (its run settled too) may make a later copy "provably stale":
            # a message returned to the queue must be handled again when it comes back.
            if not result.failed.intersection(messages):
                self._known(job_id, order)
        return result

    # ------------------------------------------------------------------ one job

    def _apply_job(self, group: list[Delivery], result: TrackResult, settle: dict[str, JobRecord]) -> None:
        events = sorted((delivery.event for delivery in group), key=_order)
        newest = events[-1]
        job_id = newest.detail.jobId
        known = self._known_orders.get(job_id)
        if known is not None and _order(newest) <= known:
            # Provably stale (this instance has seen newer): no update to attempt, only the history.
            result.counts["StaleEvents"] += len(group)
            self._remember(job_id, events, group)
            return
        change = self._change(
            newest.detail, newest.time, passed=[_transition(event) for event in _one_per_status(events)]
        )
        applied = self.table.apply_job_state(change)
        before = applied.before
        if before is None:
            self._not_ours(newest.detail, len(group), result)
            return
        self._remember(job_id, events, group)
        messages = [delivery.message_id for delivery in group]
        if not applied.changed:
            self._seen.append((job_id, before.status_order, messages))
            result.counts["StaleEvents"] += len(group)
            if before.status in TERMINAL or before.status_order == change.order:
                # A retried message may have failed after the job finished; and a stored order equal to
                # ours is our own write (botocore re-sent it after its answer was lost): settle its run.
                _to_settle(settle, before)
            return
        self._seen.append((job_id, change.order, messages))
        result.counts["JobTransitions"] += 1
        result.counts["StaleEvents"] += len(group) - 1
        if newest.detail.status in TERMINAL:
            result.ended[(before.team, before.queue, newest.detail.status)] += 1
        if before.status == "SUBMITTED" or newest.detail.status in TERMINAL:
            _to_settle(settle, before.model_copy(update={"status": newest.detail.status}))

    def _remember(self, job_id: str, events: list[BatchEvent], group: list[Delivery]) -> None:
        """Queue the events' transitions for the job's history (written for the whole batch at the end of `track`)."""
        for event in events:
            self._transitions.append((job_id, _transition(event), [delivery.message_id for delivery in group]))

    def _known(self, job_id: str, order: str | None) -> None:
        """Remember the newest order seen for a job (bounded), so later stale events cost no write."""
        if order is None:
            return
        self._known_orders[job_id] = max(order, self._known_orders.get(job_id, ""))
        self._known_orders.move_to_end(job_id)
        while len(self._known_orders) > KNOWN_ORDERS:
            self._known_orders.popitem(last=False)

    def _change(
        self,
        detail: JobDetail,
        at: datetime,
        *,
        passed: list[Transition],
        status: str | None = None,
        reason: str | None = None,
    ) -> JobChange:
        """The job's new state, and the statuses it passed through to get there: the outbox entry
        (`JobRecord.passed`) written with it, from which the publish function tells what the spec asked."""
        status = status or detail.status
        attempts = len(detail.attempts)
        fields: dict[str, Any] = {
            "status_reason": reason if reason is not None else detail.statusReason,
            "log_links": [link.model_dump(mode="json") for link in self._log_links(detail)],
            "passed": [transition.model_dump(mode="json", exclude_none=True) for transition in passed],
        }
        if detail.exit_code is not None:
            fields["exit_code"] = detail.exit_code
        if status in TERMINAL:
            fields["finished_at"] = timestamp(at)
            fields["expires_at"] = self.table.history_expiry(at)
            seconds = run_seconds(detail)
            if seconds:
                fields["duration_seconds"] = seconds
            if detail.arrayProperties and detail.arrayProperties.statusSummary:
                fields["status_summary"] = dict(detail.arrayProperties.statusSummary)
            requested = requested_resources(detail)
            if requested is not None and not detail.arrayProperties:
                fields["usage"] = usage_of(requested, seconds).model_dump(mode="json")
        if status == "FAILED" and reason is None:
            failure = classify(detail)
            fields["failure_class"], fields["failure"] = failure.kind, failure.words
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

    def _log_links(self, detail: JobDetail) -> list[LogLink]:
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

    def _not_ours(self, detail: JobDetail, events: int, result: TrackResult) -> None:
        if OWNED_TAG in detail.tags:
            raise NotYetRecorded(detail.jobId)
        result.counts["ForeignEvents"] += events
        logger.info("ignoring an event of a job batchdrop did not submit", extra={"job_id": detail.jobId})

    # ------------------------------------------------------------------ array children

    def _apply_children(self, parent_id: str, group: list[Delivery], result: TrackResult) -> None:
        parent = self._array(parent_id)
        if parent is None or not parent.array_size:
            self._not_ours(group[0].event.detail, len(group), result)
            return
        newest: dict[int, BatchEvent] = {}
        for delivery in group:
            event = delivery.event
            index = event.detail.child_index
            if index not in newest or _child_state(event) > _child_state(newest[index]):
                newest[index] = event
        result.counts["ChildEvents"] += len(group)
        for _ in range(8):  # optimistic: another instance may merge the same array at the same time
            stored = self.table.get_children(parent_id)
            merged = _merged(stored, newest, parent)
            if merged is None:  # nothing new; but the parent may not show the last merge (its copy failed)
                if self.table.children_version_on_parent(parent_id) < stored.version:
                    self.table.show_children_on_parent(parent_id, stored, timestamp(self.clock()))
                return
            if self.table.put_children(parent_id, merged, read_version=stored.version):
                self.table.show_children_on_parent(parent_id, merged, timestamp(self.clock()))
                return
        raise RuntimeError(f"array {parent_id}: its children kept changing under us")

    def _array(self, parent_id: str) -> JobRecord | None:
        """An array job's record, for its size and resources: they never change, so one read per
        instance serves every later batch of its children (bounded, oldest forgotten first)."""
        parent = self._arrays.get(parent_id)
        if parent is None:
            parent = self.table.get_job(parent_id)
            if parent is None or not parent.array_size:
                return parent
            self._arrays[parent_id] = parent
            while len(self._arrays) > KNOWN_ARRAYS:
                self._arrays.popitem(last=False)
        return parent

    # ------------------------------------------------------------------ runs

    def _settle_runs(
        self, records: list[JobRecord], deliveries: Mapping[str, list[Delivery]], result: TrackResult
    ) -> None:
        """Bring the runs of these jobs (each in its newest status) up to date.

        A job that has only started moves its run to `running` with one conditional write; the runs
        of jobs that ended are read together (two batch reads for the whole batch of events) and
        end when all their jobs have.
        """
        for record in records:
            if record.status not in TERMINAL:
                with _returned_on_failure(result, deliveries.get(record.job_id, [])):
                    self.table.set_run_status(record.run_id, record.team, "running", expected={"submitted"})
        ended = [record for record in records if record.status in TERMINAL]
        if not ended:
            return
        runs: dict[str, RunRecord] = {}
        jobs: dict[str, JobRecord] = {}
        with _returned_on_failure(result, [d for record in ended for d in deliveries.get(record.job_id, [])]):
            runs = self.table.get_runs(record.run_id for record in ended)
            runs = {run_id: run for run_id, run in runs.items() if run.status not in FINISHED_RUN | {"submitting"}}
            jobs = self.table.get_jobs(ref.job_id for run in runs.values() for ref in run.jobs)
        for record in ended:
            if (run := runs.get(record.run_id)) is not None:
                with _returned_on_failure(result, deliveries.get(record.job_id, [])):
                    self._settle_run(
                        run, {ref.job_id: jobs[ref.job_id] for ref in run.jobs if ref.job_id in jobs}, result
                    )

    def _settle_run(self, run: RunRecord, records: dict[str, JobRecord], result: TrackResult) -> None:
        failed = [record for record in records.values() if record.status in {"FAILED", "LOST"}]
        written = 0
        for record in failed:
            written += self._fail_downstream(run, record, records, result)
        if written:  # steps downstream were failed just now: read their records again
            records = self.table.get_jobs(ref.job_id for ref in run.jobs)
        statuses = [records[ref.job_id].status if ref.job_id in records else "SUBMITTED" for ref in run.jobs]
        if all(status in TERMINAL for status in statuses):
            outcome = _run_outcome(statuses, records.values())
            first = next((records[ref.job_id] for ref in run.jobs if records[ref.job_id].status != "SUCCEEDED"), None)
            total = Usage()
            for record in records.values():
                total = _add(_add(total, record.usage or Usage()), record.child_usage)
            if self.table.set_run_status(
                run.run_id,
                run.team,
                outcome,
                expected={"submitted", "running"},
                finished_at=timestamp(self.clock()),
                expires_at=self.table.history_expiry(self.clock()),
                reason=f"step {first.step}: {first.failure or first.status_reason}" if first else None,
                usage=total.model_dump(mode="json"),
            ):
                result.counts[f"Runs{outcome.capitalize()}"] += 1
        elif run.status == "submitted" and any(status != "SUBMITTED" for status in statuses):
            self.table.set_run_status(run.run_id, run.team, "running", expected={"submitted"})

    def _fail_downstream(
        self, run: RunRecord, failed: JobRecord, records: dict[str, JobRecord], result: TrackResult
    ) -> int:
        """Fail, with the reason, every step that waits (directly or not) for a failed one; how many
        records it wrote to."""
        waiting = {failed.step}
        grew = True
        while grew:
            grew = False
            for ref in run.jobs:
                if ref.step not in waiting and waiting & set(ref.depends_on):
                    waiting.add(ref.step)
                    grew = True
        now = self.clock()
        written = 0
        for ref in run.jobs:
            record = records.get(ref.job_id)
            if ref.step == failed.step or ref.step not in waiting or record is None or record.status in TERMINAL:
                continue
            written += 1
            if self._end_on_our_word(record, "FAILED", f"upstream step `{failed.step}` failed", now) is not None:
                result.counts["JobsFailedUpstream"] += 1
                result.ended[(record.team, record.queue, "FAILED")] += 1
        return written

    def _end_on_our_word(self, record: JobRecord, status: str, reason: str, now: datetime) -> JobRecord | None:
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
        change = self._change(detail, now, status=status, reason=reason, passed=[transition])
        applied = self.table.apply_job_state(change)
        self.table.add_transitions([(record.job_id, transition)])
        if not applied.changed or applied.before is None:
            return None
        return applied.before

    # ------------------------------------------------------------------ stuck and lost

    def _report_blocked(self, delivery: Delivery, result: TrackResult) -> None:
        detail = delivery.event.detail
        record = self.table.get_job(detail.parent_id)
        if record is None:
            self._not_ours(detail, 1, result)
            return
        self.report_stuck(record, detail.statusReason, delivery.event.time)
        result.counts["QueueBlocked"] += 1

    def mark_lost(self, record: JobRecord, now: datetime) -> int:
        """A job Batch no longer knows: LOST (finished, not succeeded), never RUNNING forever."""
        reason = "Batch no longer knows this job (it forgets finished jobs after a day); its end was never heard"
        before = self._end_on_our_word(record, "LOST", reason, now)
        if before is None:
            return 0
        logger.warning("job lost", extra={"job_id": record.job_id, "run_id": record.run_id})
        self._settle_runs([before.model_copy(update={"status": "LOST"})], {}, TrackResult())
        return 1

    def report_stuck(self, record: JobRecord, reason: str | None, at: datetime) -> bool:
        """Record one stuck report per job and reason, with its advice (the publish function tells it
        as `job.stuck`); False if it was already reported."""
        queue = self.config.get().queues.get(record.queue)
        since = record.status_since or record.submitted_at
        return self.table.mark_stuck_reported(
            record.job_id,
            reason or "RUNNABLE too long",
            advice=stuck_advice(reason, record.resources, record.queue, queue),
            runnable_seconds=max(0.0, (at - since).total_seconds()),
        )


def _to_settle(settle: dict[str, JobRecord], record: JobRecord) -> None:
    """Note a run to bring up to date; a job that ended says more about its run than one that started."""
    if record.run_id not in settle or record.status in TERMINAL:
        settle[record.run_id] = record


@contextmanager
def _returned_on_failure(result: TrackResult, group: list[Delivery]) -> Iterator[None]:
    """One job's work: if it fails, its messages go back to the queue, and the batch goes on."""
    try:
        yield
    except NotYetRecorded:
        result.counts["NotYetRecorded"] += len(group)
        result.failed.update(delivery.message_id for delivery in group)
        result.unrecorded.update(delivery.message_id for delivery in group)
    except Exception:
        logger.exception("tracking failed", extra={"messages": [delivery.message_id for delivery in group]})
        result.failed.update(delivery.message_id for delivery in group)


def requested_resources(detail: JobDetail) -> Resources | None:
    """What the job asked for, from the event (the request's overrides are in it); summed over a
    multi-container job's containers."""
    containers = [detail.container] if detail.container else []
    if detail.ecsProperties:
        containers += [c for task in detail.ecsProperties.taskProperties for c in task.containers]
    vcpus, memory, gpus = 0.0, 0, 0
    for container in containers:
        wanted = {item["type"]: item["value"] for item in container.resourceRequirements}
        vcpus += float(wanted.get("VCPU", container.vcpus or 0))
        memory += int(float(wanted.get("MEMORY", container.memory or 0)))
        gpus += int(wanted.get("GPU", 0))
    if vcpus <= 0 or memory < 128:
        return None
    return Resources(vcpus=vcpus, memory_mib=memory, gpus=gpus)


def usage_of(resources: Resources, seconds: float) -> Usage:
    hours = seconds / 3600
    return Usage(
        vcpu_hours=resources.vcpus * hours,
        gpu_hours=resources.gpus * hours,
        memory_gib_hours=resources.memory_mib / 1024 * hours,
    )


def _add(left: Usage, right: Usage) -> Usage:
    return Usage(
        vcpu_hours=left.vcpu_hours + right.vcpu_hours,
        gpu_hours=left.gpu_hours + right.gpu_hours,
        memory_gib_hours=left.memory_gib_hours + right.memory_gib_hours,
    )


def _merged(stored: Children, newest: dict[int, BatchEvent], parent: JobRecord) -> Children | None:
    """The children with these events merged in (a child's later state only, never past its end), or
    None if nothing changed."""
    size = parent.array_size or 0
    states = list(stored.states.ljust(2 * size, "."))
    counts = Counter(stored.counts)
    usage = stored.usage
    changed = False
    for index, event in newest.items():
        if not 0 <= index < size:
            continue
        old = "".join(states[2 * index : 2 * index + 2])
        new = _child_state(event)
        if old >= new or (old != ".." and CHILD_STATUS[old[1]] in TERMINAL):
            continue  # stale, duplicate, or the child has already ended
        states[2 * index : 2 * index + 2] = new
        changed = True
        if old != "..":
            counts[CHILD_STATUS[old[1]]] -= 1
        counts[event.detail.status] += 1
        if event.detail.status in TERMINAL:
            usage = _add(usage, usage_of(parent.resources, run_seconds(event.detail)))
    if not changed:
        return None
    return Children(
        states="".join(states),
        version=stored.version + 1,
        counts=dict(sorted(counts.items())),
        usage=usage,
    )


def _child_state(event: BatchEvent) -> str:
    """A child's two characters (see CHILD_CODES): later attempts, then later statuses, sort higher."""
    return _BASE36[min(len(event.detail.attempts), 35)] + CHILD_CODES[event.detail.status]


def _transition(event: BatchEvent) -> Transition:
    return Transition(
        status=event.detail.status, at=event.time, reason=event.detail.statusReason, attempt=len(event.detail.attempts)
    )


def _order(event: BatchEvent) -> str:
    return order_key(len(event.detail.attempts), event.detail.status, event.time)


def _one_per_status(events: list[BatchEvent]) -> list[BatchEvent]:
    """The latest event of each (attempts, status) among newer ones, in order."""
    latest: dict[tuple[int, str], BatchEvent] = {}
    for event in events:
        latest[(len(event.detail.attempts), event.detail.status)] = event
    return sorted(latest.values(), key=_order)


class Reconciler:
    """Asks Batch about jobs that have been quiet too long, because events get lost.

    Batch sends no event at submission and forgets finished jobs after about a
    day, so a lost event could leave a job RUNNING in the table forever. Every
    run, jobs not heard of for `quiet_after` are described (100 to a call) and
    what Batch says goes through the same state machine; a job Batch no longer
    knows is marked LOST. A job RUNNABLE longer than `runnable_after` gets one
    `job.stuck` event with advice.
    """

    def __init__(
        self,
        *,
        tracker: Tracker,
        batch: BatchGateway,
        quiet_after: timedelta = timedelta(minutes=10),
        runnable_after: timedelta = timedelta(minutes=30),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.tracker = tracker
        self.batch = batch
        self.quiet_after = quiet_after
        self.runnable_after = runnable_after
        self.clock = clock

    def reconcile(self) -> Counter[str]:
        now = self.clock()
        quiet = self.tracker.table.quiet_jobs(before=timestamp(now - self.quiet_after))
        counts: Counter[str] = Counter(QuietJobs=len(quiet))
        known = {
            job_id: JobDetail.model_validate(raw)
            for job_id, raw in self.batch.describe({record.job_id for record in quiet}).items()
        }
        deliveries = []
        for record in quiet:
            detail = known.get(record.job_id)
            if detail is None:
                counts["LostJobs"] += self.tracker.mark_lost(record, now)
                continue
            event = BatchEvent.model_validate(
                {
                    "id": f"reconcile-{record.job_id}",
                    "detail-type": "Batch Job State Change",
                    "source": "aws.batch",
                    "time": now,
                    "region": self.tracker.region,
                    "detail": detail,
                }
            )
            deliveries.append(Delivery(message_id=record.job_id, event=event))
        result = self.tracker.track(deliveries)
        counts.update(result.counts)
        counts["ReconcileFailures"] += len(result.failed)
        for record in quiet:
            detail = known.get(record.job_id)
            if detail is None or detail.status != "RUNNABLE":
                continue
            since = record.status_since if record.status == "RUNNABLE" and record.status_since else now
            if now - since >= self.runnable_after and self.tracker.report_stuck(
                record.model_copy(update={"status_since": since}), detail.statusReason, now
            ):
                counts["StuckJobs"] += 1
        return counts


def _run_outcome(statuses: list[str], records: Iterable[JobRecord]) -> str:
    """succeeded when every job did; cancelled when a job was cancelled (by `batchdrop cancel`, the
    console or a state time limit): the rest of its failures follow from that; failed otherwise."""
    if all(status == "SUCCEEDED" for status in statuses):
        return "succeeded"
    return "cancelled" if any(record.failure_class == "cancelled" for record in records) else "failed"
