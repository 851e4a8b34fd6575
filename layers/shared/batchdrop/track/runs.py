"""Runs follow their jobs: `running` when one first leaves SUBMITTED, `succeeded`, `failed` or
`cancelled` once all have ended; when a step fails, the steps that wait for it are failed with that
reason. A failed job that batchdrop is replacing (`JobRecord.recovery`) has not ended its step: its run
waits for the new job (the submit function rewires the run's jobs to it), and the steps after it are not
failed by batchdrop (Batch fails them, and the submit function submits them again)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from batchdrop.events.contract import RUN_ENDED, RecoveryTold, RunStep, Usage, failure_told
from batchdrop.limits import PROBLEM_MESSAGE_CHARS
from batchdrop.platform.costs import run_cost
from batchdrop.store.chains import chain_line, left_behind, recovered_links, replaced_jobs
from batchdrop.store.records import TERMINAL, JobRecord, RunRecord, SubmittedJobRef, timestamp, utc_now
from batchdrop.track.batches import Delivery, TrackResult, returned_on_failure
from batchdrop.track.changes import StateChanges
from batchdrop.track.ports import TrackStore
from batchdrop.track.usage import add_usage

FINISHED_RUN = RUN_ENDED | {"rejected"}
"""A run past these is settled: it ended, or was rejected (it never had a job)."""


class RunSettler:
    """Brings the runs of jobs that moved up to date."""

    def __init__(self, *, table: TrackStore, changes: StateChanges, clock: Callable[[], datetime] = utc_now) -> None:
        self.table = table
        self.changes = changes
        self.clock = clock

    def settle(self, records: list[JobRecord], deliveries: Mapping[str, list[Delivery]], result: TrackResult) -> None:
        """Bring the runs of these jobs (each in its newest status) up to date.

        A job that has only started moves its run to `running` with one conditional write; the runs
        of jobs that ended are read together (two batch reads for the whole batch of events) and
        end when all their jobs have.
        """
        for record in records:
            if record.status not in TERMINAL:
                with returned_on_failure(result, deliveries.get(record.job_id, [])):
                    self.table.set_run_status(record.run_id, record.team, "running", expected={"submitted"})
        # A replaced job's late event says nothing of its run: its replacement speaks for its step.
        ended = [record for record in records if record.status in TERMINAL and record.recovered_by is None]
        if not ended:
            return
        runs: dict[str, RunRecord] = {}
        jobs: dict[str, JobRecord] = {}
        with returned_on_failure(result, [d for record in ended for d in deliveries.get(record.job_id, [])]):
            runs = self.table.get_runs(record.run_id for record in ended)
            runs = {run_id: run for run_id, run in runs.items() if run.status not in FINISHED_RUN | {"submitting"}}
            jobs = self.table.get_jobs(ref.job_id for run in runs.values() for ref in run.jobs)
        for record in ended:
            if (run := runs.get(record.run_id)) is not None:
                with returned_on_failure(result, deliveries.get(record.job_id, [])):
                    self._settle_run(
                        run, {ref.job_id: jobs[ref.job_id] for ref in run.jobs if ref.job_id in jobs}, result
                    )

    def _settle_run(self, run: RunRecord, records: dict[str, JobRecord], result: TrackResult) -> None:
        waits = run.cancel_requested_at is None  # a cancelled run's failed jobs are not replaced
        failed = [
            record
            for record in records.values()
            if record.status in {"FAILED", "LOST"} and not (waits and being_replaced(record))
        ]
        written = 0
        for record in failed:
            written += self._fail_downstream(run, record, records, result)
        if written:  # steps downstream were failed just now: read their records again
            records = self.table.get_jobs(ref.job_id for ref in run.jobs)
        statuses = [_standing(records.get(ref.job_id), waits) for ref in run.jobs]
        if all(status in TERMINAL for status in statuses):
            chain = replaced_jobs(self.table.get_jobs, records.values())
            steps = [step_summary(ref, records[ref.job_id], chain) for ref in run.jobs]
            outcome = _run_outcome(statuses, records.values())
            if outcome == "succeeded" and any(step.status != "succeeded" for step in steps):
                outcome = "failed"  # an array's recovery left failed children behind
            first = next((step for step in steps if step.status != "succeeded"), None)
            cost = run_cost(run.run_id, [*records.values(), *chain.values()])
            priced = {"cost_usd": round(cost.usd, 4)} if cost.priced_jobs else {}
            if self.table.set_run_status(
                run.run_id,
                run.team,
                outcome,
                expected={"submitted", "running"},
                finished_at=timestamp(self.clock()),
                expires_at=self.table.history_expiry(self.clock()),
                reason=f"step {first.step}: {first.failure or first.status}" if first else None,
                usage=run_usage(run, records, chain).model_dump(mode="json"),
                steps=[step.model_dump(mode="json", exclude_none=True) for step in steps],
                **priced,
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
            if self.changes.end_on_our_word(record, "FAILED", f"upstream step `{failed.step}` failed", now) is not None:
                result.counts["JobsFailedUpstream"] += 1
                result.ended[(record.team, record.queue, "FAILED")] += 1
        return written


def to_settle(settle: dict[str, JobRecord], record: JobRecord) -> None:
    """Note a run to bring up to date; a job that ended says more about its run than one that started."""
    if record.run_id not in settle or record.status in TERMINAL:
        settle[record.run_id] = record


def _standing(record: JobRecord | None, waits: bool) -> str:
    """A job's status as its run counts it: one not recorded yet has been submitted; one being replaced
    (unless its run was cancelled) is recovering, not ended."""
    if record is None:
        return "SUBMITTED"
    return "RECOVERING" if waits and being_replaced(record) else record.status


def being_replaced(record: JobRecord) -> bool:
    """A failed job batchdrop decided to replace with a new one: its step has not ended."""
    return record.status == "FAILED" and record.recovery is not None


def run_usage(run: RunRecord, records: Mapping[str, JobRecord], replaced: Mapping[str, JobRecord]) -> Usage:
    """What the run's jobs used, the jobs they replaced included (those ran too). A step a resumed run
    reused (`reused_from`) is not counted: its job ran once, for the run it reuses, and is counted there."""
    reused = {ref.job_id for ref in run.jobs if ref.reused_from is not None}
    own = [record for job_id, record in records.items() if job_id not in reused]
    total = Usage()
    for record in [*own, *(replaced[job.job_id] for job in _chains(own, replaced))]:
        total = add_usage(add_usage(total, record.usage or Usage()), record.child_usage)
    return total


def _chains(records: Iterable[JobRecord], replaced: Mapping[str, JobRecord]) -> list[JobRecord]:
    """Every job `records` replaced, directly or not (each once)."""
    found: dict[str, JobRecord] = {}
    for record in records:
        current = record.recovers
        while current is not None and current in replaced and current not in found:
            found[current] = replaced[current]
            current = replaced[current].recovers
    return list(found.values())


def recoveries(record: JobRecord, replaced: Mapping[str, JobRecord]) -> list[RecoveryTold]:
    """The recoveries of a step whose last job is `record`, oldest first (`store.chains.recovered_links`)."""
    return [
        RecoveryTold.model_validate({**job.recovery.model_dump(), "job_id": job.job_id})
        for job in recovered_links(record, replaced)
        if job.recovery is not None
    ]


def step_summary(ref: SubmittedJobRef, record: JobRecord, replaced: Mapping[str, JobRecord] | None = None) -> RunStep:
    """How one ended step went, compactly: what the run keeps of it (and `run.ended` tells)."""
    failed = record.status in {"FAILED", "LOST"}
    failure = failure_told(record.failure or record.status_reason, record.recovery_final)
    chain = recoveries(record, replaced or {})
    story = chain_line(record, replaced or {})
    status = record.status.lower()
    if not failed and (left := left_behind(record, replaced or {})):  # its children did not all succeed
        failed, failure, status = True, left, "failed"
    return RunStep(
        step=ref.step,
        job_id=record.job_id,
        status=status,
        queue=record.queue,
        hardware=record.hardware,
        array_size=record.array_size,
        attempts=record.attempts,
        ended_at=record.finished_at,
        duration_seconds=record.duration_seconds,
        children=record.told_children,
        usage=record.told_usage,
        exit_code=record.exit_code if failed else None,
        failure_class=record.failure_class if failed else None,  # type: ignore[arg-type]  # classify's
        failure=failure[:PROBLEM_MESSAGE_CHARS] if failed and failure else None,
        recoveries=chain or None,
        story=story[:PROBLEM_MESSAGE_CHARS] if story else None,
        reused_from=ref.reused_from,
    )


def _run_outcome(statuses: list[str], records: Iterable[JobRecord]) -> str:
    """succeeded when every job did; cancelled when a job was cancelled (by `batchdrop cancel`, the
    console or a state time limit): the rest of its failures follow from that; failed otherwise."""
    if all(status == "SUCCEEDED" for status in statuses):
        return "succeeded"
    return "cancelled" if any(record.failure_class == "cancelled" for record in records) else "failed"
