"""Submitting a dropped spec file (DESIGN.md §5): claim, read, plan, submit, record, tell.

Every delivery of an S3 object goes through `Submitter.submit`, at least once
and maybe concurrently. The run record is the lock and the journal:

1. **Claim** the run id with a conditional write (status `submitting`, owner
   = the SQS message). A second delivery finds the claim: if the run is done,
   or another message is working on it, it is acknowledged and nothing is
   submitted. A redelivery of the owner's own message (its Lambda crashed or
   timed out) resumes; so does anyone once the claim is older than
   `stale_claim_after` (longer than a Lambda can live).
2. **Read, validate, route and plan** the file. A bad file is *rejected*:
   its record, receipt and `run.rejected` event say why, and the message is
   acknowledged, because retrying cannot fix it.
3. **Submit** the jobs in dependency order. A resumed run first looks each
   deterministic job name up in Batch and adopts what an earlier attempt
   created. If Batch refuses a job for good, the jobs already submitted for
   the run are cancelled and the run is rejected with Batch's words.
4. **Record**: the jobs and the run's final state. A fresh claim's records
   are new items no one else writes (tracking waits for job records, and
   leaves a run alone while it is `submitting`), so they are staged and
   written for the whole SQS batch with BatchWriteItem by `flush`. A resumed
   run writes at once, in one transaction, only if the claim is still ours
   and never over a record that exists.
5. **Tell**: after the records, the receipt in S3 and the event (published
   ten to a call). A redelivered message whose run is already recorded only
   repeats this step.

Anything else that fails (S3, DynamoDB, Batch unavailable, the platform
config unreadable) raises: the SQS record returns to the queue, is retried
and after the redrive count reaches the dead-letter queue — never lost.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from batchdrop.batch_gateway import BatchGateway, BatchRefused, SubmittedJob
from batchdrop.config_source import PlatformConfigSource
from batchdrop.errors import Problem, SpecRejected
from batchdrop.events import MAX_EVENT_PROBLEMS, EventJob, RunRejected, RunSubmitted, _Event, event_id
from batchdrop.identity import run_id_for_object
from batchdrop.planning import Plan, PlannedJob, plan_run
from batchdrop.publisher import EventPublisher
from batchdrop.records import (
    MAX_RECORDED_PROBLEMS,
    JobRecord,
    Receipt,
    RunRecord,
    SpecSource,
    SubmittedJobRef,
    Transition,
    utc_now,
)
from batchdrop.spec import parse_spec
from batchdrop.storage import JobsBucket, SpecUnreadable, locate
from batchdrop.table import RecordConflict, RecordsTable

logger = logging.getLogger(__name__)

OutcomeKind = Literal["submitted", "rejected", "duplicate", "in_progress", "ignored"]


@dataclass(frozen=True)
class Drop:
    """One S3 object that arrived under `incoming/`, as its notification describes it."""

    source: SpecSource
    message_id: str
    """The SQS message that carried the notification: the claim's owner."""
    size: int | None = None
    event_time: datetime | None = None


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
    """A decided run whose records, receipt and event wait for `flush`."""

    run: RunRecord
    jobs: list[JobRecord]
    problems: list[Problem]


class _Refused(Exception):  # control flow: Batch refused a job, so the run is rejected
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def submitted_job_record(
    plan: Plan,
    job: PlannedJob,
    *,
    job_id: str,
    job_name: str,
    depends_on: list[str],
    source: SpecSource,
    spec_digest: str,
    at: datetime,
) -> JobRecord:
    """A job's record as the submit function first writes it: SUBMITTED, waiting for Batch's events."""
    return JobRecord(
        job_id=job_id,
        run_id=plan.run_id,
        team=plan.team,
        environment=plan.environment,
        spec_name=plan.spec_name,
        step=job.step,
        job_name=job_name,
        queue=job.queue,
        queue_arn=job.queue_arn,
        hardware=job.hardware,
        job_definition=job.job_definition,
        job_definition_arn=job.job_definition_arn,
        resources=job.resources,
        array_size=job.array_size,
        max_attempts=int(job.request.get("retryStrategy", {}).get("attempts", 1)),
        depends_on=depends_on,
        history={"0:SUBMITTED": Transition(status="SUBMITTED", at=at)},
        submitted_at=at,
        last_event_at=at,
        spec_digest=spec_digest,
        source=source,
        notify_on=plan.notify_on,
    )


class Submitter:
    def __init__(
        self,
        *,
        table: RecordsTable,
        batch: BatchGateway,
        bucket: JobsBucket,
        publisher: EventPublisher,
        config: PlatformConfigSource,
        clock: Callable[[], datetime] = utc_now,
        stale_claim_after: timedelta = timedelta(minutes=16),
        retention: timedelta = timedelta(days=90),
    ) -> None:
        self.table = table
        self.batch = batch
        self.bucket = bucket
        self.publisher = publisher
        self.config = config
        self.clock = clock
        self.stale_claim_after = stale_claim_after
        self.retention = retention
        self._pending: list[_Event] = []
        self._staged: list[_Staged] = []

    @staticmethod
    def run_id(source: SpecSource) -> str:
        return run_id_for_object(
            source.bucket, source.key, version_id=source.version_id, etag=source.etag, sequencer=source.sequencer
        )

    def submit(self, drop: Drop) -> Outcome:
        location = locate(drop.source.key)
        if location is None:
            logger.info("ignoring an object outside incoming/<team>/", extra={"key": drop.source.key})
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
                receipt_key=location.receipt_key,
            )
        )
        run = claim.run
        resuming = not claim.fresh
        if resuming:
            if run.status != "submitting":
                if run.claim_owner == drop.message_id:  # our own redelivery: only the telling may be missing
                    self._tell(run, run.problems)
                    return self._outcome(run, drop)
                return Outcome(kind="duplicate", run_id=run.run_id, team=run.team)
            if run.claim_owner != drop.message_id and now - run.claimed_at < self.stale_claim_after:
                return Outcome(kind="in_progress", run_id=run.run_id, team=run.team)
            try:
                run = self.table.reclaim_run(run, drop.message_id, now)
            except RecordConflict:
                return Outcome(kind="in_progress", run_id=run.run_id, team=run.team)
            logger.info("resuming a run an earlier attempt left unfinished", extra={"run_id": run.run_id})
        return self._submit_claimed(run, drop, resuming=resuming)

    def _submit_claimed(self, run: RunRecord, drop: Drop, *, resuming: bool) -> Outcome:
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
        try:
            plan = plan_run(parsed, team=run.team, config=self.config.get(), run_id=run.run_id)
        except SpecRejected as rejected:
            return self._reject(run, drop, rejected.problems, resuming=resuming)
        try:
            submitted = self._submit_jobs(plan, resuming=resuming)
        except _Refused as refused:
            return self._reject(run, drop, [refused.problem], resuming=resuming)
        return self._record_submitted(run, drop, plan, submitted, resuming=resuming)

    def _submit_jobs(self, plan: Plan, *, resuming: bool) -> list[tuple[PlannedJob, SubmittedJob]]:
        job_ids: dict[str, str] = {}
        submitted: list[tuple[PlannedJob, SubmittedJob]] = []
        for job in plan.jobs:
            try:
                result = self.batch.submit(job.submit_request(job_ids), look_first=resuming)
            except BatchRefused as refusal:
                for _, earlier in submitted:
                    self.batch.terminate(earlier.job_id, reason=f"batchdrop: run {plan.run_id} was refused by Batch")
                path = f"steps.{job.step}" if len(plan.jobs) > 1 or job.step != "main" else ""
                raise _Refused(Problem(path=path, code="refused_by_batch", message=str(refusal))) from refusal
            job_ids[job.step] = result.job_id
            submitted.append((job, result))
        return submitted

    def _record_submitted(
        self,
        run: RunRecord,
        drop: Drop,
        plan: Plan,
        submitted: list[tuple[PlannedJob, SubmittedJob]],
        *,
        resuming: bool,
    ) -> Outcome:
        now = self.clock()
        job_ids = {job.step: result.job_id for job, result in submitted}
        refs = [
            SubmittedJobRef(
                step=job.step,
                job_id=result.job_id,
                job_name=result.job_name,
                queue=job.queue,
                hardware=job.hardware,
                array_size=job.array_size,
                depends_on=job.depends_on,
            )
            for job, result in submitted
        ]
        final = run.model_copy(
            update={
                "status": "submitted",
                "jobs": refs,
                "warnings": plan.warnings,
                "notify_on": plan.notify_on,
                "submitted_at": now,
            }
        )
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
        self._decide(_Staged(final, records, []), resuming=resuming)
        return self._outcome(final, drop)

    def _reject(
        self, run: RunRecord, drop: Drop, problems: list[Problem], *, resuming: bool, receipt: bool = True
    ) -> Outcome:
        final = run.model_copy(
            update={
                "status": "rejected",
                "problems": problems[:MAX_RECORDED_PROBLEMS],
                "problem_count": len(problems),
                "submitted_at": self.clock(),
                "expires_at": int((self.clock() + self.retention).timestamp()),
                "receipt_key": run.receipt_key if receipt else None,
            }
        )
        self._decide(_Staged(final, [], problems), resuming=resuming)
        logger.info(
            "spec rejected",
            extra={"run_id": run.run_id, "problems": [problem.render() for problem in problems[:5]]},
        )
        return self._outcome(final, drop, problems)

    def _decide(self, decided: _Staged, *, resuming: bool) -> None:
        if resuming:  # the records may exist in part: write only what is missing, only if still ours
            self.table.finish_run(decided.run, decided.jobs)
            self._tell(decided.run, decided.problems)
        else:
            self._staged.append(decided)

    def _tell(self, run: RunRecord, problems: list[Problem]) -> None:
        """Write the run's receipt and queue its event (both idempotent: same run, same content)."""
        problems = problems or run.problems
        if run.receipt_key:
            receipt = Receipt.for_run(run, problems)
            self.bucket.write_receipt(
                run.source.bucket, run.receipt_key, receipt.model_dump(mode="json", by_alias=True)
            )
        receipt_uri = f"s3://{run.source.bucket}/{run.receipt_key}" if run.receipt_key else None
        common: dict[str, Any] = {  # what every run event says
            "event_id": event_id(run.run_id, run.status),
            "time": run.submitted_at or self.clock(),
            "team": run.team,
            "environment": run.environment,
            "run_id": run.run_id,
            "spec_name": run.spec_name,
            "source_uri": run.source.uri,
        }
        if run.status == "rejected":
            self._pending.append(
                RunRejected(
                    **common,
                    reason=problems[0].render() if problems else None,
                    problems=problems[:MAX_EVENT_PROBLEMS],
                    problem_count=run.problem_count or len(problems),
                    receipt_uri=receipt_uri,
                )
            )
        else:
            self._pending.append(
                RunSubmitted(
                    **common,
                    jobs=[EventJob.model_validate(job.model_dump()) for job in run.jobs],
                    receipt_uri=receipt_uri or "",
                    notify_on=run.notify_on,
                    warnings=run.warnings,
                )
            )

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

    def flush(self) -> None:
        """Record the staged runs, write their receipts and publish every event of this batch.

        Raises if any of it fails: the whole SQS batch is then delivered again, and every drop
        in it resumes (its claim is ours), writing only what is missing.
        """
        staged, self._staged = self._staged, []
        try:
            self.table.write_new(
                [decided.run for decided in staged], [job for decided in staged for job in decided.jobs]
            )
            for decided in staged:
                self._tell(decided.run, decided.problems)
            if self._pending:
                self.publisher.publish(self._pending)
        finally:
            self._pending = []
