"""`submit --wait` and `--follow`: a run looked at until it ends, with every transition its jobs made, in
the order they happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import TERMINAL, JobRecord, Transition, utc_now
from batchdrop_cli.run_views import RunReader, RunView

SETTLE = timedelta(seconds=3)
"""How long `watch` holds a followed run's news back: a job's history and its children's counts are
written by different writes (and batches of events) that may land a few seconds apart."""


@dataclass(frozen=True)
class Progress:
    """One look at a followed run: where it is, and what happened since the last look."""

    view: RunView
    transitions: list[tuple[JobRecord, Transition]] = field(default_factory=list)
    """New history entries, oldest first, with the job they belong to."""
    children_changed: list[JobRecord] = field(default_factory=list)
    """Array jobs whose children's counts moved."""
    events: list[tuple[datetime, JobRecord, Transition | None]] = field(default_factory=list)
    """Both of the above in the order they happened, with when: a transition, or (None) an array
    job's children's counts as they stood at that time. Held back until `SETTLE` old (all of them at
    the run's end), so one written a moment late still comes in its place."""


class RunFollower:
    """Follows a run: looks at it every few seconds until it has ended."""

    def __init__(
        self,
        *,
        runs: RunReader,
        table: RecordQueries,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runs = runs
        self.table = table
        self.clock = clock
        self.sleep = sleep

    def watch(self, run_id: str, *, poll: float = 2.0) -> Iterator[Progress]:
        """A run's progress every `poll` seconds, with every transition its jobs made, until it has ended."""
        seen: set[tuple[str, str]] = set()
        ended: set[str] = set()
        settled: set[str] = set()
        children: dict[str, dict[str, int]] = {}
        held: list[tuple[datetime, JobRecord, Transition | None]] = []
        last_look = False
        while True:
            view = self.runs.view(run_id)
            timed: list[tuple[datetime, JobRecord, Transition | None]] = []
            changed: list[JobRecord] = []
            for job in view.jobs:
                if job.job_id in settled:
                    continue
                latest: datetime | None = None
                for transition in self.table.get_history(job.job_id):  # in the order it happened
                    # Clocks differ (SUBMITTED is the submit function's, the rest Batch's): never let a
                    # job's transition sort before the one it followed.
                    latest = transition.at if latest is None else max(latest, transition.at)
                    if (job.job_id, transition.key) not in seen:
                        seen.add((job.job_id, transition.key))
                        timed.append((latest, job, transition))
                if job.children and job.children != children.get(job.job_id):
                    children[job.job_id] = dict(job.children)
                    changed.append(job)
                    # The counts as of the job's last news, never before the transitions it made.
                    moment = job.last_event_at if latest is None else max(latest, job.last_event_at)
                    timed.append((moment, job, None))
                if job.status in TERMINAL:
                    # Looked at once more after it ended: its last transitions and its children's final
                    # counts are written beside its status, and may land a moment after it.
                    (settled if job.job_id in ended else ended).add(job.job_id)
            timed.sort(key=lambda entry: entry[0])  # stable: a job's own order holds among equal times
            transitions = [(job, transition) for _, job, transition in timed if transition is not None]
            held = sorted(held + timed, key=lambda entry: entry[0])
            horizon = self.clock() - SETTLE
            due = held if last_look else [entry for entry in held if entry[0] <= horizon]
            held = held[len(due) :]
            if view.ended and not last_look:  # one more look for what the run's last moments wrote
                last_look = True
                self.sleep(min(poll, 1.0))
                if timed or due:
                    yield Progress(view=view, transitions=transitions, children_changed=changed, events=due)
                continue
            yield Progress(view=view, transitions=transitions, children_changed=changed, events=due)
            if view.ended:
                return
            self.sleep(poll)
