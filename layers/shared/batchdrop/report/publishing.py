"""Writing a run's report where its people find it (docs/report.md): when a run ends, the report function
renders the page from the records and puts it in the jobs bucket, off the hot path (tracking only records
the end; the `run.ended` event brings the report function here).

Two copies, as for receipts: `runs/<run id>/report.html` always (reachable by run id), and
`receipts/<team>/<path>.report.html` beside the file's receipt while that receipt is this run's (a newer
upload of the same file has its own receipt, and its report takes the place when it ends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from batchdrop.gateways.bucket import report_key, run_report_key
from batchdrop.platform.costs import cost_of
from batchdrop.report.page import render_report
from batchdrop.report.records import ChildrenReader, RecordReader, ReportRecords, read_report_records
from batchdrop.store.records import utc_now


class ReportBucket(Protocol):  # `batchdrop.gateways.bucket.JobsBucket`
    def write_report(self, bucket: str, key: str, page: str) -> None: ...

    def receipt_run_id(self, bucket: str, key: str) -> str | None: ...


@dataclass(frozen=True)
class WrittenReport:
    run_id: str
    keys: list[str]
    """Where it was written, in the run's bucket."""
    size: int
    """The page's bytes."""
    jobs: int
    """Job records it was made of (recovered ones included)."""


def report_page(records: ReportRecords, now: datetime) -> str:
    """The page, with cost in dollars where the jobs' queues have prices (no cost columns otherwise)."""
    priced = any(job.price is not None for job in records.jobs)
    return render_report(records.run, records.jobs, records.children, now=now, cost_of=cost_of if priced else None)


class ReportWriter:
    def __init__(
        self,
        *,
        table: RecordReader,
        children: ChildrenReader,
        bucket: ReportBucket,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.table = table
        self.children = children
        self.bucket = bucket
        self.clock = clock

    def write(self, run_id: str) -> WrittenReport:
        """Render the run's report and put it by run id, and beside the receipt while the receipt is this
        run's. Writing it again (a redelivered event) writes the same page over itself."""
        records = read_report_records(self.table, self.children, run_id)
        page = report_page(records, self.clock())
        run = records.run
        keys = [run_report_key(run.run_id)]
        if run.receipt_key and self.bucket.receipt_run_id(run.source.bucket, run.receipt_key) == run.run_id:
            keys.append(report_key(run.receipt_key))
        for key in keys:
            self.bucket.write_report(run.source.bucket, key, page)
        return WrittenReport(run_id=run.run_id, keys=keys, size=len(page.encode()), jobs=len(records.jobs))
