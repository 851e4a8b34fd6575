"""`cancel`: a run's queued jobs cancelled and its running ones terminated, who asked recorded first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.gateways.batch import BatchGateway
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import TERMINAL, utc_now
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.run_views import RunReader

STARTED_JOB_STATES = frozenset({"STARTING", "RUNNING"})
"""A job in these is terminated (killed); before them, stopping one cancels it."""


class RunAlreadyEnded(OperationFailed):
    """`cancel` of a run that has ended: nothing to do, and not a mistake (the command line exits 0)."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} already ended: {status}")
        self.run_id = run_id
        self.status = status


@dataclass(frozen=True)
class StopRequest:
    """What `cancel` did to one job of the run."""

    step: str
    job_id: str
    status: str
    action: Literal["cancelled", "terminated", "already ended", "failed"]
    detail: str | None = None


class RunCanceller:
    """Stops a run's jobs in Batch, having recorded who asked and why."""

    def __init__(
        self,
        *,
        runs: RunReader,
        table: RecordQueries,
        batch: BatchGateway,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.runs = runs
        self.table = table
        self.batch = batch
        self.clock = clock

    def cancel(self, run_id: str, *, who: str, reason: str | None = None) -> list[StopRequest]:
        """Cancel the run's queued jobs and terminate its running ones (array parents stop their children)."""
        view = self.runs.view(run_id)
        status = view.run.status
        if status == "submitting":
            raise OperationFailed(f"run {run_id} is still being submitted: cancel it again in a few seconds")
        if view.ended:
            raise RunAlreadyEnded(run_id, status)
        words = f"cancelled by {who} with batchdrop" + (f": {reason}" if reason else "")
        unfinished = [job for job in view.jobs if job.status not in TERMINAL]
        # Recorded first: the events Batch sends for the stopped jobs then find who stopped them.
        self.table.record_cancel_request(
            run_id, (job.job_id for job in unfinished), who=who, reason=reason, at=self.clock()
        )
        requests: list[StopRequest] = []
        for job in view.jobs:
            if job.status in TERMINAL:
                requests.append(StopRequest(job.step, job.job_id, job.status, "already ended"))
                continue
            started = job.status in STARTED_JOB_STATES
            try:
                # TerminateJob whatever the recorded state: it cancels a job that has not started and
                # kills one that has. CancelJob would silently ignore a job that started since its
                # record was written (records trail Batch by an event's journey).
                self.batch.terminate(job.job_id, words)
            except (ClientError, BotoCoreError) as exc:
                requests.append(StopRequest(job.step, job.job_id, job.status, "failed", str(exc)))
                continue
            requests.append(StopRequest(job.step, job.job_id, job.status, "terminated" if started else "cancelled"))
        return requests
