"""Array jobs' children (`<parent>:<index>`): not records of their own, but two characters each in one
item beside their parent, merged a batch at a time, with the counts, usage and histogram of run times
they add up to; a batch of 100 child events costs a read and two writes, not 100."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import datetime

from batchdrop.limits import FAILED_CHILD_LOGS
from batchdrop.store.child_states import BASE36, CHILD_CODES, CHILD_STATUS, FAILED_CODES, run_time_bucket
from batchdrop.store.items import Children
from batchdrop.store.records import TERMINAL, JobRecord, timestamp, utc_now
from batchdrop.track.batch_events import BatchEvent, attempt_run_seconds, log_streams, run_seconds
from batchdrop.track.batches import Delivery, TrackResult, not_ours
from batchdrop.track.costs import CostCounting
from batchdrop.track.failures import classify
from batchdrop.track.ports import TrackStore
from batchdrop.track.usage import add_usage, usage_of

KNOWN_ARRAYS = 1_000
"""Array jobs whose record (size, resources) this instance keeps."""


class ArrayChildren:
    """Merges children's events into their array's children item, and shows the totals on the parent."""

    def __init__(
        self, *, table: TrackStore, clock: Callable[[], datetime] = utc_now, costs: CostCounting | None = None
    ) -> None:
        self.table = table
        self.clock = clock
        self.costs = costs
        """Counts the array's cost once its children have all ended (and it has)."""
        self._arrays: OrderedDict[str, JobRecord] = OrderedDict()

    def apply(self, parent_id: str, group: list[Delivery], result: TrackResult) -> None:
        parent = self._array(parent_id)
        if parent is None or not parent.array_size:
            not_ours(group[0].event.detail, len(group), result)
            return
        newest: dict[int, BatchEvent] = {}
        for delivery in group:
            event = delivery.event
            index = event.detail.child_index
            if index not in newest or _child_state(event) > _child_state(newest[index]):
                newest[index] = event
        result.counts["ChildEvents"] += len(group)
        messages = [delivery.message_id for delivery in group]
        for _ in range(8):  # optimistic: another instance may merge the same array at the same time
            stored = self.table.get_children(parent_id)
            merged = _merged(stored, newest, parent)
            if merged is None:  # nothing new; but the parent may not show the last merge (its copy failed)
                if self.table.children_version_on_parent(parent_id) < stored.version:
                    self.table.show_children_on_parent(parent_id, stored, timestamp(self.clock()))
                if self.costs is not None:  # a copy of the last children's ends: counted once
                    self.costs.children_merged(parent, stored, result, messages)
                return
            if self.table.put_children(parent_id, merged, read_version=stored.version):
                self.table.show_children_on_parent(parent_id, merged, timestamp(self.clock()))
                if self.costs is not None:
                    self.costs.children_merged(parent, merged, result, messages)
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


def _merged(stored: Children, newest: dict[int, BatchEvent], parent: JobRecord) -> Children | None:
    """The children with these events merged in (a child's later state only, never past its end), or
    None if nothing changed."""
    size = parent.array_size or 0
    states = list(stored.states.ljust(2 * size, "."))
    counts = Counter(stored.counts)
    run_times = Counter(stored.run_times)
    usage = stored.usage
    failed_logs = dict(stored.failed_logs)
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
        if event.detail.status in TERMINAL:  # its first end (an end already merged was skipped above): counted once
            usage = add_usage(usage, usage_of(parent.resources, run_seconds(event.detail)))
            ran = attempt_run_seconds(event.detail)[-1]  # its last attempt's: the one that ended it
            if ran is not None:
                run_times[run_time_bucket(ran)] += 1
            log = _ending_log(event) if event.detail.status == "FAILED" else None
            if log is not None:
                failed_logs[index] = log
    if not changed:
        return None
    return Children(
        states="".join(states),
        version=stored.version + 1,
        counts=dict(sorted(counts.items())),
        usage=usage,
        run_times=dict(sorted(run_times.items())),
        failed_logs=dict(sorted(failed_logs.items())[:FAILED_CHILD_LOGS]),
    )


def _ending_log(event: BatchEvent) -> tuple[str, str] | None:
    """The log group and stream of the attempt that ended a child (its first container's), or None: it
    never started. Kept for the lowest indices only (`limits.FAILED_CHILD_LOGS`), so whichever order the
    children end in, the same ones are kept."""
    streams = log_streams(event.detail)
    if not streams:
        return None
    last = max(attempt for attempt, _, _, _ in streams)
    _, _, group, stream = next(entry for entry in streams if entry[0] == last)
    return group, stream


def _child_state(event: BatchEvent) -> str:
    """A child's two characters (see CHILD_CODES): later attempts, then later statuses, sort higher; a
    failure batchdrop may recover keeps its kind (FAILED_CODES)."""
    code = CHILD_CODES[event.detail.status]
    if event.detail.status == "FAILED":
        code = FAILED_CODES.get(classify(event.detail).kind, code)
    return BASE36[min(event.detail.attempt_count, 35)] + code
