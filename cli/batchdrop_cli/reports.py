"""`batchdrop report RUN_ID [--output FILE] [--open]`: a run's report page (docs/report.md), built here from
the records table, for a run that has ended or one still going: the run, its jobs with their histories,
the jobs its recoveries replaced, and its arrays' children. One HTML file that loads nothing."""

from __future__ import annotations

import argparse
import webbrowser
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from batchdrop.platform.costs import cost_of
from batchdrop.report.page import render_report
from batchdrop.store.items import Children
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import JobRecord, RunRecord, utc_now
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.stack import EXIT_OK, _Stack, command, print_json

MAX_RECOVERIES_FOLLOWED = 20
"""How far back a step's chain of recovered jobs is read (each recovery names the job it replaced)."""


class RecordReader(Protocol):  # `batchdrop.store.queries.RecordQueries`
    table_name: str

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]: ...

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
    A reused step's job (an earlier run's) is read without its history: the report does not draw it."""
    run = table.get_run(run_id)
    if run is None:
        raise OperationFailed(f"no run {run_id!r} in table {table.table_name}")
    reused = {ref.job_id for ref in run.jobs if ref.reused_from}
    found = table.get_jobs(ref.job_id for ref in run.jobs)
    for _ in range(MAX_RECOVERIES_FOLLOWED):
        replaced = {job.recovers for job in found.values() if job.recovers and job.recovers not in found}
        if not replaced:
            break
        found |= table.get_jobs(replaced)
    jobs = [job if job.job_id in reused else table.with_history(job) for job in found.values()]
    arrays = {
        job.job_id: children.get_children(job.job_id) for job in jobs if job.array_size and job.job_id not in reused
    }
    return ReportRecords(run=run, jobs=jobs, children=arrays)


def write_report(path: Path, page: str) -> int:
    """Write the page; its size in bytes. A path that cannot be written is said in words."""
    body = page.encode()
    try:
        path.write_bytes(body)
    except OSError as exc:
        raise OperationFailed(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    return len(body)


def add_report_command(commands: Any) -> None:
    report = command(
        commands,
        "report",
        "write a run's report: one HTML page of its timeline, steps, children and failures (docs/report.md)",
        "batchdrop report 3kq7c2m9x4t1v8b5n6pa",
        "batchdrop report 3kq7c2m9x4t1v8b5n6pa --output /tmp/run.html --open",
        details="Built from the records table, for a run that has ended or one still going. The page loads "
        "nothing (no script, font or image from anywhere): it opens from disk with no network. "
        "Default file: ./RUN_ID.report.html.",
    )
    report.add_argument("run_id", metavar="RUN_ID", help="the run to report on (printed by submit, listed by list)")
    report.add_argument("--output", metavar="FILE", help="where to write the page (default: ./RUN_ID.report.html)")
    report.add_argument("--open", action="store_true", help="open it in the web browser once written")
    report.set_defaults(run=_report)


def _report(args: argparse.Namespace) -> int:
    table = _Stack(args).operations.table
    records = read_report_records(table, JobStates(table.client, table.table_name), args.run_id)
    priced = any(job.price is not None for job in records.jobs)  # cost columns only where a queue has prices
    page = render_report(
        records.run, records.jobs, records.children, now=utc_now(), cost_of=cost_of if priced else None
    )
    path = Path(args.output) if args.output else Path(f"{records.run.run_id}.report.html")
    size = write_report(path, page)
    if args.json:
        print_json({"run_id": records.run.run_id, "report": str(path), "bytes": size})
    else:
        print(path)
    if args.open and not webbrowser.open(path.resolve().as_uri()):
        print(f"batchdrop: no web browser found here: open {path} yourself")
    return EXIT_OK
