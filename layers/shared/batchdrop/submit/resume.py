"""Resuming a run (docs/resume.md): which steps of a new run reuse an earlier run's jobs instead of being
submitted again.

A step is reused when the earlier run has a job for it that SUCCEEDED, whose content hash
(`PlannedJob.content_hash`) is the step's as planned now, whose step `rerun` does not name, and every step
it depends on is reused too. The earlier run must be the same team's and have ended. A reused step keeps
the earlier job: the new run's list of jobs names it (`SubmittedJobRef.reused_from`), and its record stays
the earlier run's, already SUCCEEDED, so tracking has nothing to wait for.

An array or sweep that cannot be reused whole may be reused in part: each child has a content hash of its
own (`platform.fingerprints.child_hashes`, kept beside the job), and a child whose hash a child of the
earlier step's jobs had when it succeeded (its first job, and every recovery of it) is not run again. The
step is then submitted as an array of just the other children, told their indices in the plan
(`BATCHDROP_CHILD_INDICES`, as a recovery's are), so each sees the values it would have had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchdrop.errors import Problem, SpecRejected, cut
from batchdrop.platform.fingerprints import child_hashes
from batchdrop.platform.planning import Plan, PlannedJob
from batchdrop.platform.recovery import just_these_children
from batchdrop.spec.model import JobSpec
from batchdrop.spec.sweep import compact_indices, expand_indices
from batchdrop.store.chains import replaced_jobs
from batchdrop.store.child_states import succeeded_children
from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef
from batchdrop.submit.ports import ClaimStore

ENDED = frozenset({"succeeded", "failed", "cancelled"})
"""A run in one of these can be resumed: none of its jobs will change any more."""


@dataclass(frozen=True)
class ReusedChildren:
    """A step of arrays reused in part: which of its children (indices in the plan) it runs, which not."""

    job_id: str
    """The earlier run's job of the step (the last of its chain)."""
    reused: list[int]
    runs: list[int]


@dataclass(frozen=True)
class Resumed:
    run_id: str
    """The run resumed."""
    reused: dict[str, SubmittedJobRef]
    """Step -> the earlier job it reuses, as the new run lists it."""
    children: dict[str, ReusedChildren] = field(default_factory=dict)
    """Step -> the children it reuses and runs, for an array or sweep reused in part."""

    def shaped(self, record: JobRecord, ref: SubmittedJobRef) -> tuple[JobRecord, SubmittedJobRef]:
        """A submitted job's record and reference as a step reused in part has them: the children it runs
        (`child_indices`), those it reuses (`reused_children`), and the array's size its request asked."""
        part = self.children.get(record.step)
        if part is None:
            return record, ref
        size = len(part.runs) if len(part.runs) > 1 else None
        record = record.model_copy(
            update={
                "array_size": size,
                "child_indices": compact_indices(part.runs),
                "reused_children": compact_indices(part.reused),
            }
        )
        ref = ref.model_copy(
            update={"array_size": size, "reused_children": len(part.reused), "reused_children_from": self.run_id}
        )
        return record, ref


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
    children: dict[str, ReusedChildren] = {}
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
        elif (
            ref is not None
            and record is not None
            and job.array_size
            and job.step not in forced
            and all(step in reused for step in job.depends_on)
        ):
            hashes = plan_child_hashes(job, plan)
            done = _succeeded_child_hashes(record, table)
            kept = [index for index, value in enumerate(hashes) if value in done]
            if len(kept) == len(hashes):  # every child ran before (a sweep that lost points): nothing to run
                reused[job.step] = ref.model_copy(update={"reused_from": record.run_id, "depends_on": job.depends_on})
            elif kept:
                runs = [index for index, value in enumerate(hashes) if value not in done]
                children[job.step] = ReusedChildren(job_id=record.job_id, reused=kept, runs=runs)
    if len(reused) == len(plan.jobs):
        raise _rejected(
            "resume",
            "nothing_to_rerun",
            f"every step of run {earlier.run_id} succeeded and is unchanged: there is nothing to run again "
            "(name steps to run again with `rerun`, or `batchdrop rerun --steps`)",
        )
    return Resumed(run_id=earlier.run_id, reused=reused, children=children)


def plan_child_hashes(job: PlannedJob, plan: Plan) -> list[str]:
    """The content hash of each child of a planned array or sweep, by index ([] for a job)."""
    upstream = {planned.step: planned.content_hash for planned in plan.jobs}
    return child_hashes(job.request, job.sweep, job.array_size or 0, [upstream[step] for step in job.depends_on])


def resumed_request(step: str, request: Mapping[str, Any], resumed: Resumed | None) -> dict[str, Any]:
    """A SubmitJob request without dependencies on reused jobs (they succeeded already, and Batch forgets
    finished jobs after a while, so naming them could be refused); for a step reused in part, an array of
    just the children it runs."""
    if resumed is None:
        return dict(request)
    done = {ref.job_id for ref in resumed.reused.values()}
    depends = [item for item in request.get("dependsOn", []) if item["jobId"] not in done]
    changed = {key: value for key, value in request.items() if key != "dependsOn"}
    if depends:
        changed["dependsOn"] = depends
    if step in resumed.children:
        just_these_children(changed, compact_indices(resumed.children[step].runs))
    return changed


def _succeeded_child_hashes(last: JobRecord, table: ClaimStore) -> set[str]:
    """The hashes of the children that succeeded in the step whose last job is `last`: in its first job
    (which keeps the hashes of all its plan's children) or any job that recovered some of them, and those
    that first job reused in turn."""
    chain = [last, *replaced_jobs(table.get_jobs, [last]).values()]
    first = next((job for job in chain if job.recovers is None), last)
    hashes = table.get_child_hashes(first.job_id)
    if not hashes:
        return set()
    done = set(expand_indices(first.reused_children)) if first.reused_children else set()
    for job in chain:
        originals = expand_indices(job.child_indices) if job.child_indices else None
        if job.status == "SUCCEEDED":  # an array succeeds when every child has
            succeeded = list(range(len(originals) if originals else job.array_size or 0))
        elif job.array_size:
            succeeded = succeeded_children(table.get_children_states(job.job_id))
        else:
            succeeded = []
        done.update(
            originals[index] if originals else index for index in succeeded if not originals or index < len(originals)
        )
    return {hashes[index] for index in done if index < len(hashes)}


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
