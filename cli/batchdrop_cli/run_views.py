"""A run's state as the records table has it, for `status`, `list` and every `--json` of a run: the run
and its jobs (`RunView`), read by `RunReader`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from batchdrop.gateways.batch import BatchGateway
from batchdrop.platform.costs import cost_of, run_cost, told_usd
from batchdrop.store.chains import chain_line, replaced_jobs
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import TERMINAL, JobRecord, RunRecord
from batchdrop.track.queue_place import QueueStanding
from batchdrop_cli.operations import OperationFailed

ENDED_RUN_STATES = frozenset({"succeeded", "failed", "cancelled", "rejected"})


def shown_status(job: JobRecord) -> str:
    """The status people see: Batch says FAILED for a job it cancelled; batchdrop says CANCELLED."""
    return "CANCELLED" if job.status == "FAILED" and job.failure_class == "cancelled" else job.status


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run record as the commands print it (without the submit function's bookkeeping)."""
    return run.model_dump(mode="json", exclude={"claim_owner", "claimed_at"})


class RunView(BaseModel):
    """A run and its jobs (in the order of the spec's steps), as the table has them now."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    jobs: list[JobRecord]
    replaced: dict[str, JobRecord] = {}
    """The jobs the run's jobs replaced (recoveries), and those they replaced, by id."""
    standing: dict[str, str] = {}
    """Where each RUNNABLE job stands in its queue, in words (`track.queue_place`), by id: `status` asks Batch."""

    @property
    def ended(self) -> bool:
        return self.run.status in ENDED_RUN_STATES

    def story(self, job: JobRecord) -> str | None:
        """The job's step's whole recovery chain on one line (`store.chains.chain_line`); None if it had none."""
        return chain_line(job, self.replaced)

    def reused_from(self, job: JobRecord) -> str | None:
        """The run a step reused its job from (a resumed run's step that succeeded before); None if this run's."""
        return next((ref.reused_from for ref in self.run.jobs if ref.job_id == job.job_id and ref.reused_from), None)

    def job_cost(self, job: JobRecord) -> float | None:
        """A job's estimated cost in US dollars, once it has ended (as its `job.status` event tells it: until
        then its usage is an earlier attempt's or some children's, which reads as the job's whole cost);
        None before that, where its queue has no prices, and for a step reused from another run (that run
        paid for it)."""
        if job.status not in TERMINAL or self.reused_from(job):
            return None
        return cost_of(job)

    def as_json(self) -> dict[str, Any]:
        """What `status --json` prints: the run record and each job record with its history, with the run's
        cost and each job's as the text `status` prints them (estimates in US dollars: the run's so far while
        it runs, a job's once it has ended; None where no queue has prices, and for a step reused from another
        run, which paid for it)."""
        cost = run_cost(self.run.run_id, [*self.jobs, *self.replaced.values()])  # recoveries ran too
        return {
            "run": run_json(self.run),
            "cost_usd": told_usd(cost.usd) if cost.known else None,
            "unpriced_jobs": cost.unpriced_jobs,
            "jobs": [
                {
                    **job.model_dump(mode="json", exclude={"history", "status_order"}),
                    "cost_usd": None if (usd := self.job_cost(job)) is None else told_usd(usd),
                    "shown_status": shown_status(job),
                    "recovery_chain": self.story(job),
                    "standing": self.standing.get(job.job_id),
                    "history": [transition.model_dump(mode="json") for transition in job.ordered_history()],
                }
                for job in self.jobs
            ],
        }


class RunReader:
    """Runs as the records table has them: one with its jobs (`status`, and every command that acts on a
    run), or a team's newest (`list`)."""

    def __init__(self, *, table: RecordQueries, batch: BatchGateway) -> None:
        self.table = table
        self.batch = batch

    def view(self, run_id: str, *, with_history: bool = False, with_standing: bool = False) -> RunView:
        """A run and its jobs; `with_standing`: Batch is asked where each RUNNABLE job stands (what the stuck
        advice says), leaving out what it does not answer."""
        run = self.table.get_run(run_id)
        if run is None:
            raise OperationFailed(f"no run {run_id!r} in table {self.table.table_name}")
        found = self.table.get_jobs(ref.job_id for ref in run.jobs)
        jobs = [found[ref.job_id] for ref in run.jobs if ref.job_id in found]
        if with_history:
            jobs = [self.table.with_history(job) for job in jobs]
        replaced = replaced_jobs(self.table.get_jobs, jobs) if any(job.recovers for job in jobs) else {}
        standing: dict[str, str] = {}
        if with_standing:
            asker = QueueStanding(self.batch)
            for job in jobs:
                if job.status == "RUNNABLE" and (
                    words := asker.words(queue_arn=job.queue_arn, queue=job.queue, job_id=job.job_id)
                ):
                    standing[job.job_id] = words
        return RunView(run=run, jobs=jobs, replaced=replaced, standing=standing)

    def runs(
        self, teams: Iterable[str], *, status: str | None = None, since: datetime | None = None, limit: int = 20
    ) -> tuple[list[RunRecord], bool]:
        """The newest `limit` runs of these teams (merged newest first), and whether there are more."""
        found: list[RunRecord] = []
        for team in teams:
            team_runs: list[RunRecord] = []
            start: dict[str, Any] | None = None
            while len(team_runs) <= limit:
                page, start = self.table.list_runs(
                    team, status=status, since=since, limit=limit + 1 - len(team_runs), start=start
                )
                team_runs += page
                if start is None:
                    break
            found += team_runs
        found.sort(key=lambda run: (run.received_at, run.run_id), reverse=True)
        more = len(found) > limit
        return found[:limit], more
