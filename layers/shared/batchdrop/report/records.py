"""What a run's report is made of (docs/report.md), read from the records table as it is now: the run, its
jobs with their histories, the jobs its recoveries replaced, and its arrays' children. The report function
(when a run ends) and `batchdrop report` (any time) read it the same way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from batchdrop.errors import BatchdropError
from batchdrop.store.chains import replaced_jobs
from batchdrop.store.items import Children
from batchdrop.store.records import JobRecord, RunRecord


class RunNotFound(BatchdropError):
    """There is no run of that id in the records table (never made, or expired)."""


class RecordReader(Protocol):  # `batchdrop.store.queries.RecordQueries`
    table_name: str

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]: ...

    def get_jobs_with_sweeps(self, job_ids: Iterable[str], sweeps_of: Iterable[str]) -> dict[str, JobRecord]: ...

    def with_history(self, job: JobRecord) -> JobRecord: ...


class ChildrenReader(Protocol):  # `batchdrop.store.job_states.JobStates`
    def get_children(self, parent_id: str) -> Children: ...


@dataclass(frozen=True)
class ReportRecords:
    """What a report is made of, as the table has it now."""

    run: RunRecord
    jobs: list[JobRecord]
    children: dict[str, Children]


def read_report_records(table: RecordReader, children: ChildrenReader, run_id: str) -> ReportRecords:
    """The run, its jobs (with their histories) and the jobs its recoveries replaced, and its arrays' children.
    A reused step's job (an earlier run's) is read without its history: the report does not draw it.

    A sweep's axes and values are read with the run's jobs, in the same batch read (a step's every job runs
    the same sweep: the jobs a step's recoveries replaced get its current job's), for each step the run ran
    itself (its current job may be a single job: a recovery of one child)."""
    run = table.get_run(run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r} in table {table.table_name}")
    reused = {ref.job_id for ref in run.jobs if ref.reused_from}
    found = table.get_jobs_with_sweeps(
        (ref.job_id for ref in run.jobs), sweeps_of=(ref.job_id for ref in run.jobs if not ref.reused_from)
    )
    sweeps = {job.step: job.sweep for job in found.values() if job.sweep and job.job_id not in reused}
    replaced = replaced_jobs(table.get_jobs, found.values())
    found |= {
        job_id: job.model_copy(update={"sweep": sweeps[job.step]}) if job.step in sweeps else job
        for job_id, job in replaced.items()
    }
    jobs = [job if job.job_id in reused else table.with_history(job) for job in found.values()]
    arrays = {
        job.job_id: children.get_children(job.job_id) for job in jobs if job.array_size and job.job_id not in reused
    }
    return ReportRecords(run=run, jobs=jobs, children=arrays)
