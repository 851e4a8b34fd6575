"""The report's *Arrays and sweeps* section: each array's children by status, by the attempts they made
and by their run times (median and 90th percentile in words), and its failed children: by kind in
compact ranges, then the first few one per row with their sweep values, failure in words and a link to
the child's log in CloudWatch (the stream tracking kept from the child's FAILED event), or to the child
job's page in Batch's console where no stream was kept (a child that never started; an older record)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from batchdrop.gateways.batch import console_url
from batchdrop.gateways.log_links import stream_url
from batchdrop.limits import FAILED_CHILD_LOGS
from batchdrop.report.charts import histogram, run_time_histogram, status_strip
from batchdrop.report.children import ChildSummary, FailedChild
from batchdrop.report.markup import link, table, text
from batchdrop.spec.sweep import child_values
from batchdrop.store.records import JobRecord, RunRecord

MAX_FAILED_CHILD_ROWS = FAILED_CHILD_LOGS
"""An array's failed children listed one per row (then "and N more"); every one is in the compact ranges
above the table, and `batchdrop logs --index` reads any child's log. As many as tracking keeps logs of
(the lowest indices), so every listed child that started links its log."""


def arrays_section(run: RunRecord, ordered: Sequence[JobRecord], summaries: Mapping[str, ChildSummary]) -> str:
    parts = ['<section id="arrays"><h2>Arrays and sweeps</h2>']
    for job in ordered:
        summary = summaries.get(job.job_id)
        if summary is not None:
            parts.append(_array(run, job, summary))
    parts.append("</section>")
    return "".join(parts)


def _array(run: RunRecord, job: JobRecord, summary: ChildSummary) -> str:
    counts = ", ".join(f"{text(status)} {count:,}" for status, count in summary.counts.items()) or "none heard of yet"
    parts = [
        f'<div class="array" data-job="{text(job.job_id)}"><h3>{text(job.step)}: {summary.size:,} children</h3>'
        f"{status_strip(summary.counts, summary.size)}<p>{counts}</p>"
    ]
    if summary.by_attempts:
        parts.append(f"<p>Ended children by the attempts they made:</p>{histogram(summary.by_attempts)}")
    words = summary.run_time_words()
    if words:
        chart = run_time_histogram(summary.run_times)
        parts.append(f'<p class="run-times">Ended children by run time: {text(words)}.</p>{chart}')
    elif summary.from_states:
        parts.append('<p class="muted">No child\'s run time is recorded yet.</p>')
    if not summary.from_states:
        parts.append('<p class="muted">Its children\'s states were not read: counts only.</p>')
    for kind, ranges in summary.failed_ranges().items():
        kind_words = next(child.words for child in summary.failed if child.kind == kind)
        parts.append(f"<p><strong>{text(kind_words)}</strong>: children <code>{text(ranges)}</code></p>")
    if summary.failed:
        parts.append(_failed_children(run, job, summary.failed))
    parts.append("</div>")
    return "".join(parts)


def _failed_children(run: RunRecord, job: JobRecord, failed: Sequence[FailedChild]) -> str:
    head = ["Index", *(["Sweep values"] if job.sweep else []), "Attempts", "Failure", "Its log"]
    rows = [
        [
            str(child.original) + ("" if child.original == child.index else f" (here {child.index})"),
            *([text(_values(job, child.original))] if job.sweep else []),
            str(child.attempts),
            text(child.words),
            _child_link(run, job, child),
        ]
        for child in failed[:MAX_FAILED_CHILD_ROWS]
    ]
    more = len(failed) - MAX_FAILED_CHILD_ROWS
    return (
        f"<p>Failed children ({len(failed):,}):</p>"
        + table(head, rows, numeric=frozenset({0, len(head) - 3}))
        + (f'<p class="muted">and {more:,} more (their indices are above).</p>' if more > 0 else "")
    )


def _values(job: JobRecord, original: int) -> str:
    """A child's sweep point, `lr=0.01 batch=64` (from the one function the prelude's decoding mirrors)."""
    try:
        return " ".join(f"{axis}={value}" for axis, value in child_values(job.sweep or {}, original).items())
    except IndexError:  # a record written wrong: say so rather than guess
        return "—"


def _child_link(run: RunRecord, job: JobRecord, child: FailedChild) -> str:
    """The child's log in the CloudWatch console (else, with no stream kept, its job's page in the Batch
    console, which lists its attempts), and the command that prints its log."""
    child_id = f"{job.job_id}:{child.index}"
    log = stream_url(job.region, *child.log) if child.log else None
    if log is not None:
        page = link(log, f"log of {child_id}")
    else:
        page = link(console_url(job.region, child_id), f"job {child_id}") if job.region else text(child_id)
    command = f"batchdrop logs {run.run_id} --step {job.step} --index {child.index}"
    return f"{page}<br><code>{text(command)}</code>"
