"""Resuming a run (docs/resume.md): which steps of a new run reuse an earlier run's jobs instead of being
submitted again.

A step is reused when the earlier run has a job for it that SUCCEEDED, whose content hash
(`PlannedJob.content_hash`) is the step's as planned now, whose step `rerun` does not name, and every step
it depends on is reused too. The earlier run must be the same team's and have ended. A reused step keeps
the earlier job: the new run's list of jobs names it (`SubmittedJobRef.reused_from`), and its record stays
the earlier run's, already SUCCEEDED, so tracking has nothing to wait for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchdrop.errors import Problem, SpecRejected, cut
from batchdrop.platform.planning import Plan
from batchdrop.spec.model import JobSpec
from batchdrop.store.records import RunRecord, SubmittedJobRef
from batchdrop.submit.ports import ClaimStore

ENDED = frozenset({"succeeded", "failed", "cancelled"})
"""A run in one of these can be resumed: none of its jobs will change any more."""


@dataclass(frozen=True)
class Resumed:
    run_id: str
    """The run resumed."""
    reused: dict[str, SubmittedJobRef]
    """Step -> the earlier job it reuses, as the new run lists it."""


def resumed_steps(spec: JobSpec, run: RunRecord, plan: Plan, table: ClaimStore) -> Resumed | None:
    """What a spec with `resume` reuses of the run it names; None for a spec without it. `SpecRejected`
    when that run cannot be resumed, or when every step would be reused (there is nothing to run)."""
    if spec.resume is None:
        return None
    earlier = _run_to_resume(spec.resume, run, table)
    records = table.get_jobs(ref.job_id for ref in earlier.jobs)
    refs = {ref.step: ref for ref in earlier.jobs}
    forced = set(spec.rerun or ())
    reused: dict[str, SubmittedJobRef] = {}
    for job in plan.jobs:  # in submission order: upstream steps are decided first
        ref = refs.get(job.step)
        record = records.get(ref.job_id) if ref is not None else None
        if (
            ref is not None
            and record is not None
            and record.status == "SUCCEEDED"
            and record.content_hash == job.content_hash
            and job.step not in forced
            and all(step in reused for step in job.depends_on)
        ):
            reused[job.step] = ref.model_copy(update={"reused_from": record.run_id, "depends_on": job.depends_on})
    if len(reused) == len(plan.jobs):
        raise _rejected(
            "resume",
            "nothing_to_rerun",
            f"every step of run {earlier.run_id} succeeded and is unchanged: there is nothing to run again "
            "(name steps to run again with `rerun`, or `batchdrop rerun --steps`)",
        )
    return Resumed(run_id=earlier.run_id, reused=reused)


def without_reused(request: Mapping[str, Any], resumed: Resumed | None) -> dict[str, Any]:
    """A SubmitJob request without dependencies on reused jobs: they succeeded already (and Batch forgets
    finished jobs after a while, so naming them could be refused)."""
    if resumed is None or "dependsOn" not in request:
        return dict(request)
    done = {ref.job_id for ref in resumed.reused.values()}
    depends = [item for item in request["dependsOn"] if item["jobId"] not in done]
    kept = {key: value for key, value in request.items() if key != "dependsOn"}
    return {**kept, "dependsOn": depends} if depends else kept


def _run_to_resume(resume: str, run: RunRecord, table: ClaimStore) -> RunRecord:
    if resume == "latest":
        earlier = [
            candidate
            for candidate in table.runs_of_source(run.source.bucket, run.source.key)
            if candidate.run_id != run.run_id
            and candidate.received_at < run.received_at  # a redelivery decides the same
            and candidate.status not in {"rejected", "submitting"}
        ]
        if not earlier:
            raise _rejected("resume", "resume_not_found", f"there is no earlier run of {cut(run.source.key)} to resume")
        found = earlier[0]
    else:
        stored = table.get_run(resume)
        if stored is None:
            raise _rejected("resume", "resume_not_found", f"there is no run {resume} to resume")
        if stored.team != run.team:
            raise _rejected(
                "resume",
                "resume_other_team",
                f"run {resume} is not team `{run.team}`'s: a team resumes only its own runs",
            )
        found = stored
    if found.status not in ENDED:
        raise _rejected(
            "resume",
            "resume_not_ended",
            f"run {found.run_id} is still {found.status}: resume it once it has ended (or cancel it first)",
        )
    return found


def _rejected(path: str, code: str, message: str) -> SpecRejected:
    return SpecRejected([Problem(path=path, code=code, message=message)])
