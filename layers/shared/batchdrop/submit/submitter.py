"""Submitting a dropped spec file (docs/architecture.md): claim, read, plan, submit, record, tell.

Every delivery of an S3 object goes through `Submitter.submit`, at least once
and maybe concurrently. The run record is the lock and the journal:

1. **Claim** the run id with a conditional write (status `submitting`, owner
   = the SQS message). A second delivery finds the claim: if the run is done,
   or another message is working on it, it is acknowledged and nothing is
   submitted. A redelivery of the owner's own message (its Lambda crashed or
   timed out) resumes, once the claim is older than `claim_lease` (the
   function's timeout: its holder is gone by then); younger, it is the same
   message delivered twice at once (SQS delivers at least once), and is handed
   back (`ClaimHeld`), to come back when the holder has finished or is gone.
   Anyone resumes once the claim is older than `stale_claim_after`.
2. **Read, validate, route and plan** the file. A sweep without `command` wraps its job definition's
   own command, read from Batch (docs/sweeps.md). A bad file is *rejected*: its record, receipt and
   `run.rejected` event say why, and the message is acknowledged: retrying cannot fix it. A spec with
   `resume` reuses an earlier run's unchanged, succeeded steps (`submit.resume`, docs/resume.md).
3. **Submit** the jobs in dependency order (all but the reused). A reclaimed run first looks each
   deterministic job name up in Batch and adopts what an earlier attempt created. If Batch refuses
   a job for good, the jobs already submitted for the run are cancelled, recorded as cancelled (so
   their events find a finished job, not a stranger) and the run is rejected with Batch's words.
4. **Record**: the jobs and the run's final state. A fresh claim's records are new items no one
   else writes (tracking waits for job records, and leaves a run alone while it is `submitting`), so
   they are staged and written for the whole SQS batch with BatchWriteItem by `flush`, the runs
   after all of their jobs' items (a write that fails part way leaves the claims `submitting`); if
   that fails, each drop is written alone, so one drop's failure returns only its own message. A
   reclaimed run writes at once, in one transaction, only if the claim is still ours; a job record
   an earlier attempt wrote is kept as it is (tracking may have moved it on).
5. **Tell**: nothing to do here. The run's record, decided, is the outbox:
   the publish function writes the receipt and the event from the table's
   stream (`batchdrop.publish.teller`), so a decided run is always told, even if
   this function dies the moment after.

Anything else that fails (S3, DynamoDB, Batch unavailable, the platform
config unreadable) raises: the SQS record returns to the queue, is retried
and after the redrive count reaches the dead-letter queue — never lost.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from batchdrop.errors import BatchdropError, Problem, SpecRejected
from batchdrop.gateways.batch import BatchRefused, SubmittedJob
from batchdrop.gateways.bucket import SpecUnreadable, locate_drop
from batchdrop.platform.identity import run_id_for_object
from batchdrop.platform.planning import Plan, PlannedJob
from batchdrop.platform.source import ConfigSource
from batchdrop.spec.parse import parse_spec
from batchdrop.store.items import RecordConflict
from batchdrop.store.records import (
    MAX_RECORDED_PROBLEMS,
    JobRecord,
    RunRecord,
    SpecSource,
    SubmittedJobRef,
    Transition,
    fit_run,
    utc_now,
)
from batchdrop.submit.budgets import BudgetCheck, MonthToDate
from batchdrop.submit.intake import misplaced_problems
from batchdrop.submit.job_records import submitted_job_record
from batchdrop.submit.plans import plan_for_submission
from batchdrop.submit.ports import ClaimStore, JobSubmitter, SpecReader
from batchdrop.submit.resume import Resumed, plan_child_hashes, resumed_request, resumed_steps

logger = logging.getLogger(__name__)


class ClaimHeld(BatchdropError):
    """The drop's message is being handled by another invocation right now (SQS delivered it twice at once):
    this copy is handed back to the queue, unhandled."""


OutcomeKind = Literal["submitted", "rejected", "duplicate", "in_progress", "ignored"]


@dataclass(frozen=True)
class Drop:
    """One S3 object that arrived under `incoming/`, as its notification describes it."""

    source: SpecSource
    message_id: str
    """The SQS message that carried the notification: the claim's owner."""
    size: int | None = None
    event_time: datetime | None = None
    dropped_by: str | None = None
    """The notification's `userIdentity.principalId`: who uploaded the object."""


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    run_id: str | None = None
    team: str | None = None
    environment: str | None = None
    jobs: list[SubmittedJobRef] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seconds_since_drop: float | None = None


@dataclass
class _Staged:
    """A decided run whose records wait for `flush`."""

    run: RunRecord
    jobs: list[JobRecord]
    message_id: str
    child_hashes: dict[str, list[str]] = field(default_factory=dict)
    """An array job's children's content hashes, by job id (submit.resume)."""


class _Refused(Exception):  # control flow: Batch refused a job, so the run is rejected
    def __init__(self, problem: Problem, cancelled: list[tuple[PlannedJob, SubmittedJob]]) -> None:
        self.problem = problem
        self.cancelled = cancelled
        """The run's jobs Batch had taken before it refused one: stopped, and recorded as cancelled."""


class Submitter:
    def __init__(
        self,
        *,
        table: ClaimStore,
        batch: JobSubmitter,
        bucket: SpecReader,
        config: ConfigSource,
        clock: Callable[[], datetime] = utc_now,
        stale_claim_after: timedelta = timedelta(minutes=16),
        claim_lease: timedelta = timedelta(seconds=125),
        retention: timedelta = timedelta(days=90),
        month_costs: MonthToDate | None = None,
    ) -> None:
        """`month_costs`: the teams' spending this month, for monthly budgets (None: only per-run ones).
        `claim_lease`: how long a claim's own message may still be held by another invocation (the
        function's timeout and a margin)."""
        self.table = table
        self.batch = batch
        self.bucket = bucket
        self.config = config
        self.clock = clock
        self.stale_claim_after = stale_claim_after
        self.claim_lease = claim_lease
        self.retention = retention
        self.budgets = BudgetCheck(months=month_costs, clock=clock)
        self._staged: list[_Staged] = []

    @staticmethod
    def run_id(source: SpecSource) -> str:
        return run_id_for_object(
            source.bucket, source.key, version_id=source.version_id, etag=source.etag, sequencer=source.sequencer
        )

    def submit(self, drop: Drop) -> Outcome:
        location = locate_drop(drop.source.key)
        if location is None:
            logger.info("ignoring an object outside incoming/, or a folder", extra={"key": drop.source.key})
            return Outcome(kind="ignored")
        now = self.clock()
        claim = self.table.claim_run(
            RunRecord(
                run_id=self.run_id(drop.source),
                team=location.team,
                status="submitting",
                source=drop.source,
                received_at=now,
                claim_owner=drop.message_id,
                claimed_at=now,
                dropped_by=drop.dropped_by,
                receipt_key=location.receipt_key,
            )
        )
        run = claim.run
        resuming = not claim.fresh
        if resuming:
            if run.status != "submitting":
                if run.claim_owner == drop.message_id:  # our own redelivery, after the records were written
                    return self._outcome(run, drop)
                return Outcome(kind="duplicate", run_id=run.run_id, team=run.team)
            if run.claim_owner != drop.message_id and now - run.claimed_at < self.stale_claim_after:
                return Outcome(kind="in_progress", run_id=run.run_id, team=run.team)
            if run.claim_owner == drop.message_id and now - run.claimed_at < self.claim_lease:
                # Not acknowledged: deleting this copy would delete the message the holder may yet fail.
                raise ClaimHeld(f"run {run.run_id}: its message is being handled by another invocation")
            try:
                run = self.table.reclaim_run(run, drop.message_id, now)
            except RecordConflict:
                return Outcome(kind="in_progress", run_id=run.run_id, team=run.team)
            logger.info("resuming a run an earlier attempt left unfinished", extra={"run_id": run.run_id})
        return self._submit_claimed(run, drop, resuming=resuming)

    def _submit_claimed(self, run: RunRecord, drop: Drop, *, resuming: bool) -> Outcome:
        misplaced = misplaced_problems(run.source.key)
        if misplaced:  # refused by its key alone: the object is not read
            return self._reject(run, drop, misplaced, resuming=resuming)
        try:
            raw = self.bucket.read_spec(run.source, drop.size)
        except SpecUnreadable as unreadable:
            return self._reject(run, drop, [unreadable.problem], resuming=resuming, receipt=unreadable.write_receipt)
        run = run.model_copy(update={"spec_digest": hashlib.sha256(raw).hexdigest()})
        try:
            parsed = parse_spec(raw, run.source.key)
        except SpecRejected as rejected:
            return self._reject(run, drop, rejected.problems, resuming=resuming)
        run = run.model_copy(update={"spec_name": parsed.spec.name, "environment": parsed.spec.environment})
        try:  # Batch unavailable raises through: the message is retried, as for any transient failure
            config = self.config.get()
            plan = plan_for_submission(parsed, team=run.team, run_id=run.run_id, config=config, batch=self.batch)
            resumed = resumed_steps(parsed.spec, run, plan, self.table)  # docs/resume.md
            reused = resumed.reused if resumed else ()
            over = self.budgets.problems(plan, config.teams.get(run.team), reused=reused)
            if over and resuming and self._submitted_before(plan, reused):
                # Its first attempt passed the monthly check and submitted: the month has moved by its own
                # jobs since, and rejecting now would strand them. The per-run limit still holds.
                over = self.budgets.problems(plan, config.teams.get(run.team), reused=reused, monthly=False)
            if over:  # docs/budgets.md: an ordinary rejection, with the arithmetic
                raise SpecRejected(over)
        except SpecRejected as rejected:
            return self._reject(run, drop, rejected.problems, resuming=resuming)
        try:
            submitted = self._submit_jobs(plan, resumed, resuming=resuming)
        except _Refused as refused:
            return self._reject(
                run, drop, [refused.problem], resuming=resuming, cancelled=self._cancelled(run, plan, refused)
            )
        return self._record_submitted(run, drop, plan, submitted, resumed, resuming=resuming)

    def _submitted_before(self, plan: Plan, reused: Collection[str]) -> bool:
        """Whether an earlier attempt at this run submitted any of its jobs (Batch knows them by name)."""
        return any(
            self.batch.exists(job.request["jobName"], job.request["jobQueue"])
            for job in plan.jobs
            if job.step not in reused
        )

    def _submit_jobs(
        self, plan: Plan, resumed: Resumed | None, *, resuming: bool
    ) -> list[tuple[PlannedJob, SubmittedJob]]:
        reused = resumed.reused if resumed else {}
        job_ids = {step: ref.job_id for step, ref in reused.items()}
        submitted: list[tuple[PlannedJob, SubmittedJob]] = []
        for job in (job for job in plan.jobs if job.step not in reused):
            try:
                request = resumed_request(job.step, job.submit_request(job_ids), resumed)
                result = self.batch.submit(request, look_first=resuming)
            except BatchRefused as refusal:
                for _, earlier in submitted:
                    self.batch.terminate(earlier.job_id, reason=f"batchdrop: run {plan.run_id} was refused by Batch")
                path = f"steps.{job.step}" if len(plan.jobs) > 1 or job.step != "main" else ""
                problem = Problem(path=path, code="refused_by_batch", message=str(refusal))
                raise _Refused(problem, submitted) from refusal
            job_ids[job.step] = result.job_id
            submitted.append((job, result))
        return submitted

    def _record_submitted(
        self,
        run: RunRecord,
        drop: Drop,
        plan: Plan,
        submitted: list[tuple[PlannedJob, SubmittedJob]],
        resumed: Resumed | None,
        *,
        resuming: bool,
    ) -> Outcome:
        now = self.clock()
        refs = dict(resumed.reused) if resumed else {}
        job_ids = {step: ref.job_id for step, ref in refs.items()} | {job.step: got.job_id for job, got in submitted}
        records = [
            submitted_job_record(
                plan,
                job,
                job_id=result.job_id,
                job_name=result.job_name,
                depends_on=[job_ids[step] for step in job.depends_on],
                source=run.source,
                spec_digest=run.spec_digest or "",
                at=now,
            )
            for job, result in submitted
        ]
        for position, (job, _) in enumerate(submitted):
            ref = SubmittedJobRef.of(records[position], job.depends_on)
            records[position], refs[job.step] = (
                resumed.shaped(records[position], ref) if resumed else (records[position], ref)
            )
        hashes = {
            record.job_id: plan_child_hashes(job, plan)
            for record, (job, _) in zip(records, submitted, strict=True)
            if job.array_size
        }
        final = run.model_copy(
            update={
                "status": "submitted",
                "jobs": [refs[job.step] for job in plan.jobs],  # a reused step names the earlier run's job
                "resumes": resumed.run_id if resumed else None,
                "warnings": plan.warnings,
                "notify_on": plan.notify_on,
                "submitted_at": now,
            }
        )
        self._decide(_Staged(final, records, drop.message_id, hashes), resuming=resuming)
        return self._outcome(final, drop)

    def _cancelled(self, run: RunRecord, plan: Plan, refused: _Refused) -> list[JobRecord]:
        """The records of the jobs stopped because Batch refused a later one: finished, cancelled, with
        the reason, so that Batch's events of them are settled, not retried into the dead-letter queue."""
        now = self.clock()
        reason = f"cancelled: Batch refused {refused.problem.path or 'the job'} of this run"
        job_ids = {job.step: result.job_id for job, result in refused.cancelled}
        return [
            submitted_job_record(
                plan,
                job,
                job_id=result.job_id,
                job_name=result.job_name,
                depends_on=[job_ids[step] for step in job.depends_on if step in job_ids],
                source=run.source,
                spec_digest=run.spec_digest or "",
                at=now,
            ).model_copy(
                update={
                    "status": "FAILED",
                    "status_reason": reason,
                    "failure_class": "cancelled",
                    "failure": reason,
                    "finished_at": now,
                    "history": {
                        "0:SUBMITTED": Transition(status="SUBMITTED", at=now),
                        "0:FAILED": Transition(status="FAILED", at=now, reason=reason),
                    },
                }
            )
            for job, result in refused.cancelled
        ]

    def _reject(
        self,
        run: RunRecord,
        drop: Drop,
        problems: list[Problem],
        *,
        resuming: bool,
        receipt: bool = True,
        cancelled: list[JobRecord] | None = None,
    ) -> Outcome:
        cancelled = cancelled or []
        final = run.model_copy(
            update={
                "status": "rejected",
                "problems": problems[:MAX_RECORDED_PROBLEMS],
                "problem_count": len(problems),
                "submitted_at": self.clock(),
                "expires_at": int((self.clock() + self.retention).timestamp()),
                "receipt_key": run.receipt_key if receipt else None,
                "jobs": [SubmittedJobRef.of(job) for job in cancelled],
            }
        )
        self._decide(_Staged(final, cancelled, drop.message_id), resuming=resuming)
        logger.info(
            "spec rejected",
            extra={"run_id": run.run_id, "problems": [problem.render() for problem in problems[:5]]},
        )
        return self._outcome(final, drop, problems)

    def _decide(self, decided: _Staged, *, resuming: bool) -> None:
        decided.run = fit_run(decided.run)
        if resuming:  # the records may exist in part: write only what is missing, only if still ours
            self.table.finish_run(decided.run, decided.jobs, decided.child_hashes)
        else:
            self._staged.append(decided)

    def _outcome(self, run: RunRecord, drop: Drop, problems: list[Problem] | None = None) -> Outcome:
        since = None
        if drop.event_time is not None and run.submitted_at is not None:
            since = (run.submitted_at - drop.event_time).total_seconds()
        return Outcome(
            kind="rejected" if run.status == "rejected" else "submitted",
            run_id=run.run_id,
            team=run.team,
            environment=run.environment,
            jobs=run.jobs,
            problems=problems if problems is not None else run.problems,
            seconds_since_drop=since,
        )

    def flush(self) -> set[str]:
        """Record the staged runs of this batch; the messages of the drops whose records could not be
        written (their SQS records return to the queue; the others' are done).

        One BatchWriteItem call carries up to 25 records, of several drops: if the whole write fails,
        each drop is written alone, so one drop that cannot be recorded holds back no other.
        """
        staged, self._staged = self._staged, []
        if not staged:
            return set()
        try:
            self.table.write_new(
                [decided.run for decided in staged],
                [job for decided in staged for job in decided.jobs],
                {job_id: hashes for decided in staged for job_id, hashes in decided.child_hashes.items()},
            )
        except Exception:
            logger.warning("the batch's records could not be written together; writing each drop alone")
        else:
            return set()
        failed: set[str] = set()
        for decided in staged:
            try:
                # after the batch's write, which may have applied in part: its job records are kept
                self.table.write_new([decided.run], decided.jobs, decided.child_hashes, keep_recorded=True)
            except Exception:
                logger.exception("a drop's records could not be written", extra={"run_id": decided.run.run_id})
                failed.add(decided.message_id)
        return failed
