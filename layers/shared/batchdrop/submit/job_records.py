"""A job's record as submitting first writes it (`Submitter`, and a recovery's new job: `Recoverer`)."""

from __future__ import annotations

from datetime import datetime

from batchdrop.platform.planning import Plan, PlannedJob
from batchdrop.store.records import JobRecord, SpecSource, Transition, kept_sweep


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
        nodes=job.nodes,
        max_attempts=int(job.request.get("retryStrategy", {}).get("attempts", 1)),
        depends_on=depends_on,
        history={"0:SUBMITTED": Transition(status="SUBMITTED", at=at)},
        submitted_at=at,
        last_event_at=at,
        spec_digest=spec_digest,
        source=source,
        notify_on=plan.notify_on,
        step_count=len(plan.jobs),
        recovery_policy=job.recovery,
        content_hash=job.content_hash,
        price=plan.prices.get(job.queue),
        sweep=kept_sweep(job.sweep),  # the report's failed children's values
    )
