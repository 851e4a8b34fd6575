"""Following every job batchdrop submitted: Batch's events, in any order, at least once.

`Tracker.track` takes a batch of Batch events (from the tracking queue, or
made by `Reconciler` from DescribeJobs) and applies them; it does the jobs
itself and hands the rest to the parts beside it (`changes`: a job's new
state; `arrays`: children; `runs`: settling):

- **Jobs.** A job's events in the batch are coalesced into one conditional
  update ordered by (attempts, status rank, time): a stale or duplicate event
  never overwrites a newer state, whichever Lambda instance processes it, and
  a finished job stays finished. Every transition goes into the history once.
- **Array children** (`<parent>:<index>`) are not records of their own:
  their latest states live in one item beside the parent, with the counts
  they add up to, so a batch of 100 child events costs a read and two
  writes, not 100.
- **Nodes** of a multi-node parallel job (`<job>#<node>`) are not records
  either (`nodes`): each node's end joins its job's history, and the main
  node's end is the job's.
- **Attempts.** Each state change records every finished attempt's end (its
  own reason, exit code and failure: `JobRecord.attempt_ends`), and each
  transition the end of the attempt before it (`Transition.attempt_end`):
  a spot reclaim of attempt 1 stays visible once attempt 2 runs.
- **Recovery.** A job that FAILED is read first: its record's policy (its
  spec's `retries`) may ask for a new job with more memory, or on the
  route's on-demand queue (`batchdrop.platform.recovery.decide`). The
  decision (`recovery`, or `recovery_final`: why not, in numbers) is written
  with the FAILED status in the same conditional update, so it is made once
  and never lost; the submit function reads it from the table's stream and
  submits the new job. Tracking never calls SubmitJob.
- **Runs** are settled when one of their jobs first leaves SUBMITTED
  (`running`) or finishes (`succeeded` or `failed` once all have); when a step
  fails, the steps that wait for it are failed with that reason. A job being
  replaced has not ended its step: its run waits for the new job.
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
from collections.abc import Callable, Iterable
from datetime import datetime

from batchdrop.platform.source import ConfigSource
from batchdrop.store.records import TERMINAL, JobRecord, Transition, order_key, utc_now
from batchdrop.track.arrays import ArrayChildren
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery, TrackResult, not_ours, returned_on_failure
from batchdrop.track.changes import StateChanges
from batchdrop.track.costs import CostCounting, CostLedger
from batchdrop.track.failures import attempt_ends, retried_because, stuck_advice
from batchdrop.track.nodes import NodeEvents
from batchdrop.track.ports import TrackStore
from batchdrop.track.runs import FINISHED_RUN, RunSettler, to_settle

logger = logging.getLogger(__name__)

KNOWN_ORDERS = 100_000
"""Jobs whose newest order this instance remembers (~100 bytes each)."""


class Tracker:
    def __init__(
        self,
        *,
        table: TrackStore,
        config: ConfigSource,
        region: str,
        clock: Callable[[], datetime] = utc_now,
        costs: CostLedger | None = None,
    ) -> None:
        """`costs`: where each ended job's cost is added to its team's month (None: costs are not counted)."""
        self.table = table
        self.config = config
        self.region = region
        self.clock = clock
        self._transitions: list[tuple[str, Transition, list[str]]] = []
        self._known_orders: OrderedDict[str, str] = OrderedDict()
        self._seen: list[tuple[str, str | None, list[str]]] = []
        """This batch's (job, newest stored order, messages): known only once the batch handled them whole."""
        self.changes = StateChanges(table=table, region=region, clock=clock)
        self.costs = CostCounting(table=table, ledger=costs) if costs is not None else None
        self.arrays = ArrayChildren(table=table, clock=clock, costs=self.costs)
        self.runs = RunSettler(table=table, changes=self.changes, clock=clock)
        self.nodes = NodeEvents(table=table)

    def track(self, deliveries: Iterable[Delivery]) -> TrackResult:
        result = TrackResult()
        jobs: dict[str, list[Delivery]] = defaultdict(list)
        children: dict[str, list[Delivery]] = defaultdict(list)
        nodes: dict[str, list[Delivery]] = defaultdict(list)
        blocked: list[Delivery] = []
        for delivery in deliveries:
            detail = delivery.event.detail
            if detail.is_node:
                nodes[detail.node_job_id].append(delivery)
            else:
                (children[detail.parent_id] if detail.is_child else jobs[detail.jobId]).append(delivery)
            if delivery.event.blocked:
                blocked.append(delivery)
        for job_id, group in nodes.items():
            with returned_on_failure(result, group):
                ended, main = self.nodes.apply(job_id, group, result)
                messages = [delivery.message_id for delivery in group]
                self._transitions += [(job_id, transition, messages) for transition in ended]
                if main:  # else no job group: an empty one has no event to apply
                    jobs[job_id] += main
        settle: dict[str, JobRecord] = {}
        for group in jobs.values():
            with returned_on_failure(result, group):
                self._apply_job(group, result, settle)
        for parent_id, group in children.items():
            with returned_on_failure(result, group):
                self.arrays.apply(parent_id, group, result)
        for delivery in blocked:
            with returned_on_failure(result, [delivery]):
                self._report_blocked(delivery, result)
        if self.costs is not None:
            self.costs.settle_months(result)
        self.runs.settle(list(settle.values()), jobs, result)
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
        # A failure may be recovered: its decision needs the job's record (its policy), read first.
        stored = self.table.get_job(job_id) if newest.detail.status == "FAILED" else None
        change = self.changes.change(
            newest.detail,
            newest.time,
            passed=[_transition(event) for event in _one_per_status(events)],
            stored=stored,
        )
        applied = self.table.apply_job_state(change)
        before = applied.before
        if before is None:
            not_ours(newest.detail, len(group), result)
            return
        self._remember(job_id, events, group)
        messages = [delivery.message_id for delivery in group]
        if not applied.changed:
            self._seen.append((job_id, before.status_order, messages))
            result.counts["StaleEvents"] += len(group)
            if before.status in TERMINAL or before.status_order == change.order:
                # A retried message may have failed after the job finished; and a stored order equal to
                # ours is our own write (botocore re-sent it after its answer was lost): settle its run.
                to_settle(settle, before)
            if self.costs is not None and before.status in TERMINAL:  # a copy of its end: counted once
                self.costs.job_ended(before, None, result, messages)
            return
        self._seen.append((job_id, change.order, messages))
        result.counts["JobTransitions"] += 1
        result.counts["StaleEvents"] += len(group) - 1
        if newest.detail.status in TERMINAL:
            result.ended[(before.team, before.queue, newest.detail.status)] += 1
        if before.status == "SUBMITTED" or newest.detail.status in TERMINAL:
            to_settle(settle, before.model_copy(update={"status": newest.detail.status}))
        if self.costs is not None and change.status in TERMINAL:
            self.costs.job_ended(before, change, result, messages)

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

    def _report_blocked(self, delivery: Delivery, result: TrackResult) -> None:
        detail = delivery.event.detail
        record = self.table.get_job(detail.owner_id)
        if record is None:
            not_ours(detail, 1, result)
            return
        self.report_stuck(record, detail.statusReason, delivery.event.time)
        result.counts["QueueBlocked"] += 1

    def mark_lost(self, record: JobRecord, now: datetime) -> int:
        """A job Batch no longer knows: LOST (finished, not succeeded), never RUNNING forever."""
        reason = "Batch no longer knows this job (it forgets finished jobs after a day); its end was never heard"
        before = self.changes.end_on_our_word(record, "LOST", reason, now)
        if before is None:
            return 0
        logger.warning("job lost", extra={"job_id": record.job_id, "run_id": record.run_id})
        self.runs.settle([before.model_copy(update={"status": "LOST"})], {}, TrackResult())
        return 1

    def settle_recoveries(self, waiting: list[JobRecord]) -> Counter[str]:
        """Failed jobs the watchdog still watches because they waited for their recovery: those whose
        recovery was settled (made, or found impossible: no Batch event will follow) settle their runs and
        leave the index; those still waiting are counted (the submit function is retrying them)."""
        settled = [record for record in waiting if record.recovery is None or record.recovered_by is not None]
        result = TrackResult()
        self.runs.settle(settled, {}, result)
        result.counts["RecoveriesWaiting"] += len(waiting) - len(settled)
        # Off the index only once its run has ended (or the job was replaced): a settling that failed, or a
        # run still waiting for other jobs, is looked at again next round.
        runs = self.table.get_runs({record.run_id for record in settled})
        for record in settled:
            run = runs.get(record.run_id)
            if record.recovered_by is not None or run is None or run.status in FINISHED_RUN:
                result.counts["RecoveriesSettled"] += self.table.unwatch(record.job_id)
        return result.counts

    def report_stuck(self, record: JobRecord, reason: str | None, at: datetime, *, standing: str = "") -> bool:
        """Record one stuck report per job and reason, with its advice (the publish function tells it
        as `job.stuck`); False if it was already reported. `standing`: where the job stands in its
        queue, in words (`track.queue_place`; only reconcile asks Batch for it), told first."""
        queue = self.config.get().queues.get(record.queue)
        since = record.status_since or record.submitted_at
        advice = stuck_advice(reason, record.resources, record.queue, queue)
        return self.table.mark_stuck_reported(
            record.job_id,
            stuck_reason(reason),
            advice=f"Where it stands: {standing}. {advice}" if standing else advice,
            runnable_seconds=max(0.0, (at - since).total_seconds()),
        )


def stuck_reason(reason: str | None) -> str:
    """What a stuck report is kept under: Batch's status reason, or that it has none."""
    return reason or "RUNNABLE too long"


def _transition(event: BatchEvent) -> Transition:
    """The event's transition, with the end of the attempt before it: at a retry's RUNNABLE, STARTING or
    RUNNING, the failed attempt (its words are the reason, if Batch gave none); at the end, the last."""
    detail = event.detail
    ends = attempt_ends(detail)
    end = ends[-1] if ends else None
    reason = detail.statusReason
    if end is not None and detail.status not in TERMINAL:
        reason = reason or retried_because(end)
    elif end is not None:
        reason = reason or end.status_reason
    return Transition(status=detail.status, at=event.time, reason=reason, attempt=detail.attempt_count, attempt_end=end)


def _order(event: BatchEvent) -> str:
    return order_key(event.detail.attempt_count, event.detail.status, event.time)


def _one_per_status(events: list[BatchEvent]) -> list[BatchEvent]:
    """The latest event of each (attempts, status) among newer ones, in order."""
    latest: dict[tuple[int, str], BatchEvent] = {}
    for event in events:
        latest[(event.detail.attempt_count, event.detail.status)] = event
    return sorted(latest.values(), key=_order)
