"""Recovering a failed job: the new jobs batchdrop submits when Batch's own retries cannot help
(docs/recovery.md).

Tracking decides: when a job fails and its spec's `retries` allow, it writes `recovery` (a
`RecoveryDue`) on the job's record with the FAILED status. That change reaches the submit function on
the records table's stream (the only function that may call SubmitJob), and `Recoverer.recover` makes
it happen:

1. **Read** the job's record again (the stream's copy is as it was when tracking wrote it): if
   `recovered_by` is set, the recovery was made and recorded; nothing to do. Then its run, and its
   spec file at the exact version the run was made from, planned again with the same run id and the
   platform config as it is now.
2. **Submit**, in dependency order, the failed step's new job (the decided memory, queue and attempts,
   named `recovery_job_name(..., number=due.number)`) and every step that waits for it, directly or
   not (Batch failed those with it), each depending on the new jobs and on the current jobs of the
   other steps. Each is submitted by its deterministic name with `look_first`: a redelivery adopts
   what an earlier attempt created, so nothing is submitted twice.
3. **Record**, each write conditional, in an order a redelivery finishes from any crash: the new jobs'
   records (where none is yet), the run's job references moved onto them (only while the run is open),
   `recovered_by` on each replaced step after the failed one, and last on the failed job itself, which
   closes the recovery (step 1).

A spec that no longer plans or a job Batch refuses makes the recovery impossible: the failed job's
`recovery_final` says why, and its `recovery` is removed (its failure is final: its run may end).
Anything else that fails raises: the stream hands the record over again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from batchdrop.errors import SpecRejected
from batchdrop.gateways.batch import BatchRefused, SubmittedJob
from batchdrop.gateways.bucket import SpecUnreadable
from batchdrop.platform.planning import Plan, PlannedJob
from batchdrop.platform.recovery import RecoveryDue, recovered_request, recovery_job_name
from batchdrop.platform.source import ConfigSource
from batchdrop.spec.parse import parse_spec
from batchdrop.store.items import RecordConflict
from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef, utc_now
from batchdrop.submit.job_records import submitted_job_record
from batchdrop.submit.plans import plan_for_submission
from batchdrop.submit.ports import JobSubmitter, RecoveryStore, SpecReader

logger = logging.getLogger(__name__)

RecoveryKind = Literal["recovered", "done_before", "not_due", "run_ended", "impossible"]
ENDED_RUN = frozenset({"succeeded", "failed", "cancelled", "rejected"})


@dataclass(frozen=True)
class Recovered:
    kind: RecoveryKind
    job_ids: dict[str, str] = field(default_factory=dict)
    """Step -> the job that replaces its failed (or waiting) one."""
    adopted: int = 0
    """How many of them an earlier attempt had submitted (found by name, not submitted again)."""
    reason: str | None = None


@dataclass(frozen=True)
class _Submitted:
    job: PlannedJob
    """As submitted: for the failed step, with the recovery's queue, memory and request."""
    result: SubmittedJob


class _Impossible(Exception):  # control flow: the recovery cannot be made; the failed job is told why
    pass


def waiting_for(step: str, plan: Plan) -> list[PlannedJob]:
    """`step`'s job and every job that waits for it, directly or not, in the plan's (dependency) order."""
    chosen = {step}
    for job in plan.jobs:  # in dependency order: a job's dependencies come before it
        if chosen & set(job.depends_on):
            chosen.add(job.step)
    return [job for job in plan.jobs if job.step in chosen]


class Recoverer:
    def __init__(
        self,
        *,
        table: RecoveryStore,
        batch: JobSubmitter,
        bucket: SpecReader,
        config: ConfigSource,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table = table
        self.batch = batch
        self.bucket = bucket
        self.config = config
        self.clock = clock

    def recover(self, failed: JobRecord) -> Recovered:
        """Replace `failed` (a job record whose `recovery` tracking set) and the steps that wait for it."""
        if failed.recovery is None:
            return Recovered(kind="not_due")
        current = self.table.get_job(failed.job_id) or failed  # the stream's copy is as tracking wrote it
        if current.recovered_by is not None:
            return Recovered(kind="done_before", job_ids={failed.step: current.recovered_by})
        due = current.recovery
        if due is None:  # found impossible before: its failure is final
            return Recovered(kind="not_due", reason=current.recovery_final)
        run = self.table.get_run(failed.run_id)
        if run is None or run.status in ENDED_RUN or run.cancel_requested_at is not None:
            logger.info("a recovery for a run that has ended: not made", extra={"job_id": failed.job_id})
            return Recovered(kind="run_ended")
        try:
            plan = self._plan(run)
            submitted = self._submit(plan, run, current, due)
        except _Impossible as impossible:
            reason = str(impossible)
            self.table.mark_recovery_final(failed.job_id, reason)
            logger.warning("a due recovery could not be made", extra={"job_id": failed.job_id, "reason": reason})
            return Recovered(kind="impossible", reason=reason)
        job_ids = {each.job.step: each.result.job_id for each in submitted}
        replaced = self._replaced(run, current, submitted)
        self.table.write_recovered(
            self._records(plan=plan, run=run, failed=current, due=due, submitted=submitted, replaced=replaced)
        )
        try:
            rewired = self._rewire(run, submitted)
        except RecordConflict:  # another step's recovery moved a job ours wait for: their copies are stale
            for each in submitted[1:]:  # the retry submits them again, named for the jobs they wait for now
                self.batch.terminate(each.result.job_id, reason=f"batchdrop: superseded in run {run.run_id}")
            raise
        if not rewired:
            for each in submitted:
                self.batch.terminate(
                    each.result.job_id, reason=f"batchdrop: run {run.run_id} ended before its recovery"
                )
            return Recovered(kind="run_ended")
        for each in submitted[1:]:  # the failed job last: its `recovered_by` closes the recovery
            self.table.mark_recovered(replaced[each.job.step], each.result.job_id)
        self.table.mark_recovered(current.job_id, job_ids[current.step])
        logger.info("recovery submitted", extra={"job_id": current.job_id, "jobs": job_ids, "words": due.words})
        return Recovered(kind="recovered", job_ids=job_ids, adopted=sum(1 for each in submitted if each.result.adopted))

    def _plan(self, run: RunRecord) -> Plan:
        """The run's spec, at the version it was made from, planned again with the same run id."""
        try:
            raw = self.bucket.read_spec(run.source)
            parsed = parse_spec(raw, run.source.key)
            return plan_for_submission(
                parsed, team=run.team, run_id=run.run_id, config=self.config.get(), batch=self.batch
            )
        except SpecUnreadable as unreadable:
            raise _Impossible(f"its spec file can no longer be read: {unreadable.problem.message}") from unreadable
        except SpecRejected as rejected:
            first = rejected.problems[0].render() if rejected.problems else "it does not plan"
            raise _Impossible(f"its spec no longer plans with the platform config as it is now: {first}") from rejected

    def _submit(self, plan: Plan, run: RunRecord, failed: JobRecord, due: RecoveryDue) -> list[_Submitted]:
        steps = waiting_for(failed.step, plan)
        if not steps or steps[0].step != failed.step:
            raise _Impossible(f"its spec has no step `{failed.step}` any more")
        job_ids = {ref.step: ref.job_id for ref in run.jobs}
        submitted: list[_Submitted] = []
        for job in steps:
            first = job.step == failed.step
            depends_on = [job_ids[step] for step in job.depends_on]
            name = recovery_job_name(
                plan.spec_name, job.step, plan.run_id, failed_step=failed.step, number=due.number, depends_on=depends_on
            )
            request = recovered_request(job.submit_request(job_ids), name=name, due=due if first else None)
            try:
                result = self.batch.submit(request, look_first=True)  # a redelivery adopts by name
            except BatchRefused as refusal:
                for earlier in submitted:
                    self.batch.terminate(
                        earlier.result.job_id, reason=f"batchdrop: recovery of {failed.job_id} refused"
                    )
                raise _Impossible(f"Batch refused its new job: {refusal}") from refusal
            as_submitted = job
            if first:
                resources = job.resources.model_copy(update={"memory_mib": due.memory_mib})
                update = {"queue": due.queue, "queue_arn": due.queue_arn, "resources": resources, "request": request}
                if due.children is not None:  # an array of just the failed children, or a job for one
                    update["array_size"] = request.get("arrayProperties", {}).get("size")
                as_submitted = job.model_copy(update=update)
            job_ids[job.step] = result.job_id
            submitted.append(_Submitted(job=as_submitted, result=result))
        return submitted

    def _replaced(self, run: RunRecord, failed: JobRecord, submitted: list[_Submitted]) -> dict[str, str]:
        """Step -> the job each new one replaces: the failed job, and the run's current job of each step after
        it; or, where the run already names the new job (a redelivery), the job its record says it replaces."""
        current = {ref.step: ref.job_id for ref in run.jobs}
        written = self.table.get_jobs(each.result.job_id for each in submitted if each.result.adopted)
        replaced = {failed.step: failed.job_id}
        for each in submitted[1:]:
            step, record = each.job.step, written.get(each.result.job_id)
            replaced[step] = record.recovers if record is not None and record.recovers else current[step]
        return replaced

    def _records(
        self,
        *,
        plan: Plan,
        run: RunRecord,
        failed: JobRecord,
        due: RecoveryDue,
        submitted: list[_Submitted],
        replaced: dict[str, str],
    ) -> list[JobRecord]:
        """The new jobs' records: each names the job it replaces; the failed step's carries the chain's
        counts and story with this recovery, a later step's keeps its own."""
        now = self.clock()
        job_ids = {ref.step: ref.job_id for ref in run.jobs} | {each.job.step: each.result.job_id for each in submitted}
        earlier = self.table.get_jobs(replaced[each.job.step] for each in submitted[1:])
        records = []
        for each in submitted:
            record = submitted_job_record(
                plan,
                each.job,
                job_id=each.result.job_id,
                job_name=each.result.job_name,
                depends_on=[job_ids[step] for step in each.job.depends_on],
                source=run.source,
                spec_digest=run.spec_digest or failed.spec_digest,
                at=now,
            )
            chain: dict[str, object] = {"recovers": replaced[each.job.step]}
            if each.job.step == failed.step:
                chain |= {"recovery_counts": due.counts, "recovery_story": [*failed.recovery_story, due.words]}
                chain |= {"child_indices": due.children}
            elif (before := earlier.get(replaced[each.job.step])) is not None:
                chain |= {"recovery_counts": before.recovery_counts, "recovery_story": before.recovery_story}
            records.append(record.model_copy(update=chain))
        return records

    def _rewire(self, run: RunRecord, submitted: list[_Submitted]) -> bool:
        """Move the run's references onto the new jobs; False if the run ended meanwhile. Raises
        `RecordConflict` if another recovery moved one of them (the stream hands the record over again)."""
        index = {ref.step: position for position, ref in enumerate(run.jobs)}
        moves = {
            index[each.job.step]: (
                run.jobs[index[each.job.step]].job_id,
                SubmittedJobRef(
                    step=each.job.step,
                    job_id=each.result.job_id,
                    job_name=each.result.job_name,
                    queue=each.job.queue,
                    hardware=each.job.hardware,
                    array_size=each.job.array_size,
                    depends_on=each.job.depends_on,
                ),
            )
            for each in submitted
        }
        if self.table.rewire_run(run.run_id, moves):
            return True
        now = self.table.get_run(run.run_id)
        if now is None or now.status in ENDED_RUN or now.cancel_requested_at is not None:
            return False
        raise RecordConflict(f"run {run.run_id}'s jobs were moved by someone else meanwhile")
