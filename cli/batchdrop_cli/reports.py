"""`batchdrop report RUN_ID [--output FILE] [--open]`: a run's report page (docs/report.md), built here from
the records table (`batchdrop.report.records`, as the report function reads them when a run ends), for a
run that has ended or one still going. One HTML file that loads nothing."""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path
from typing import Any

from batchdrop.report.publishing import report_page
from batchdrop.report.records import RunNotFound, read_report_records
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import utc_now
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.stack import EXIT_OK, Stack, command, print_json


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
    table = Stack(args).table
    try:
        records = read_report_records(table, JobStates(table.client, table.table_name), args.run_id)
    except RunNotFound as exc:
        raise OperationFailed(str(exc)) from exc
    page = report_page(records, utc_now())
    path = Path(args.output) if args.output else Path(f"{records.run.run_id}.report.html")
    size = write_report(path, page)
    if args.json:
        print_json({"run_id": records.run.run_id, "report": str(path), "bytes": size})
    else:
        print(path)
    if args.open and not webbrowser.open(path.resolve().as_uri()):
        print(f"batchdrop: no web browser found here: open {path} yourself")
    return EXIT_OK
