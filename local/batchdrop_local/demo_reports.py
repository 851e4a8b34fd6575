"""The demo's last word: each run's report page (docs/report.md), saved where a browser opens it. An ended
run's page is the one the stack's report function wrote to the bucket when it heard `run.ended`; a run with
none there (rejected: it never ends as a run) gets the page `batchdrop report` builds from the records."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdrop.gateways.bucket import run_report_key
from batchdrop.report.publishing import report_page
from batchdrop.report.records import read_report_records
from batchdrop.store.job_states import JobStates
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import RunRecord, utc_now

REPORTS = Path(__file__).resolve().parents[2] / ".batchdrop" / "reports"
WRITTEN_WITHIN = 5.0
"""Seconds to wait for the report function's page of a run that has just ended."""


@dataclass(frozen=True)
class SavedReport:
    name: str
    run_id: str
    path: Path
    by: str
    """`the report function` (its page, from the bucket) or `batchdrop report` (built here)."""


def save_reports(
    s3: Any, bucket: str, table: RecordQueries, runs: dict[str, RunRecord], folder: Path = REPORTS
) -> list[SavedReport]:
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, run in runs.items():
        page, by = _written(s3, bucket, run), "the report function"
        if page is None:
            records = read_report_records(table, JobStates(table.client, table.table_name), run.run_id)
            page, by = report_page(records, utc_now()), "batchdrop report"
        path = folder / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-')}.{run.run_id}.html"
        path.write_text(page, encoding="utf-8")
        saved.append(SavedReport(name=name, run_id=run.run_id, path=path, by=by))
    return saved


def _written(s3: Any, bucket: str, run: RunRecord) -> str | None:
    """The report function's page of an ended run, once it is there; None for a run that gets none."""
    if run.status not in {"succeeded", "failed", "cancelled"}:
        return None
    deadline = time.monotonic() + WRITTEN_WITHIN
    while True:
        try:
            return str(s3.get_object(Bucket=bucket, Key=run_report_key(run.run_id))["Body"].read().decode())
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)
