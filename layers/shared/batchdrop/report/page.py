"""`render_report`: a run's report page, one self-contained HTML file (docs/report.md). Pure: it is given
the records (the run, its jobs with their histories, its arrays' children) and the time, and reads nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import PurePosixPath

from batchdrop.events.contract import Usage
from batchdrop.gateways.log_links import stream_url
from batchdrop.notify.block_kit import human_duration
from batchdrop.report.arrays import arrays_section
from batchdrop.report.charts import Reused, timeline
from batchdrop.report.children import ChildSummary, summarize_children
from batchdrop.report.markup import CONTENT_POLICY, STYLE, dollars, hours, link, table, text, when
from batchdrop.report.timeline import Bar, attempt_bars
from batchdrop.store.items import Children
from batchdrop.store.node_ends import NodeSummary, node_summary
from batchdrop.store.records import TERMINAL, AttemptEnd, JobRecord, RunRecord
from batchdrop.track.failures import retried_because
from batchdrop.units import gib, number

CostOf = Callable[[JobRecord], float | None]
"""A job's cost in dollars (None: not known); the report shows cost columns only when given one."""
ENDED_RUNS = frozenset({"rejected", "succeeded", "failed", "cancelled"})
MAX_NODE_LOG_LINKS = 20
"""A multi-node job's failed nodes linked one by one at most (the line counts them all)."""


def render_report(
    run: RunRecord,
    jobs: Sequence[JobRecord],
    children_by_job: Mapping[str, Children],
    *,
    now: datetime,
    cost_of: CostOf | None = None,
) -> str:
    """The run's report: its status and source, a timeline of every attempt, its steps' resources, usage
    (and cost, with `cost_of`), its arrays' children, and every failure in words with its log."""
    order = _ordered(run, jobs)
    ordered = [entry for entry in order if isinstance(entry, JobRecord)]
    rows = [
        row for entry in order for row in (attempt_bars(entry, now=now) if isinstance(entry, JobRecord) else [entry])
    ]
    bars = [row for row in rows if isinstance(row, Bar)]
    title = f"{run.spec_name or PurePosixPath(run.source.key).name} — run {run.run_id}"
    sections = [_header(run, now)]
    if run.status == "rejected" or run.problems:
        sections.append(_problems(run))
    if rows:
        sections.append(f'<section id="timeline"><h2>Timeline</h2>{timeline(run, rows, now=now)}</section>')
        sections.append(_steps(order, bars, cost_of))
    summaries = {
        job.job_id: summarize_children(job, children_by_job.get(job.job_id)) for job in ordered if job.array_size
    }
    if summaries:
        sections.append(arrays_section(run, ordered, summaries))
    if ordered:
        sections.append(_failures(ordered, summaries))
    sections.append(
        f'<footer class="muted"><p>Made by batchdrop at {text(when(now))} from the run\'s records.</p></footer>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{text(title)}</h1>{''.join(sections)}</main></body></html>\n"
    )


def _ordered(run: RunRecord, jobs: Sequence[JobRecord]) -> list[JobRecord | Reused]:
    """The jobs in the spec's order of steps, each step's recovered jobs before the job that replaced them,
    and in its place each step a resumed run reused (an earlier run's job: not run, nor counted, here)."""
    by_id = {job.job_id: job for job in jobs}
    ordered: list[JobRecord | Reused] = []
    placed: set[str] = set()
    for ref in run.jobs:
        if ref.reused_from:
            ordered.append(Reused(step=ref.step, job_id=ref.job_id, run_id=ref.reused_from))
            placed.add(ref.job_id)
            continue
        chain: list[JobRecord] = []
        job = by_id.get(ref.job_id)
        while job is not None and job.job_id not in placed and job not in chain:
            chain.insert(0, job)
            job = by_id.get(job.recovers) if job.recovers else None
        for item in chain:
            placed.add(item.job_id)
            ordered.append(item)
    unplaced: list[JobRecord] = sorted((other for other in jobs if other.job_id not in placed), key=_submitted)
    ordered.extend(unplaced)
    return ordered


def _submitted(job: JobRecord) -> datetime:
    return job.submitted_at


def _header(run: RunRecord, now: datetime) -> str:
    source = run.source
    version = f" (version {source.version_id})" if source.version_id and source.version_id != "null" else ""
    facts = [
        ("Status", f'<span class="badge {text(run.status)}">{text(run.status)}</span>'),
        ("Team", text(run.team)),
        ("Spec", text(run.spec_name or "—") + (f" ({text(run.environment)})" if run.environment else "")),
        ("File", f"<code>{text(source.uri)}</code>{text(version)}"),
        ("Dropped by", text(run.dropped_by) if run.dropped_by else '<span class="muted">not named by S3</span>'),
        ("Received", text(when(run.received_at))),
        ("Submitted", text(when(run.submitted_at))),
        ("Finished", text(when(run.finished_at))),
    ]
    if run.resumes:
        facts.append(("Resumes", f"run {text(run.resumes)}: its unchanged, succeeded steps are reused"))
    if run.cancelled_by:
        why = f": {run.cancel_reason}" if run.cancel_reason else ""
        facts.append(("Cancelled", text(f"by {run.cancelled_by} at {when(run.cancel_requested_at)}{why}")))
    if run.reason:
        facts.append(("Why it failed", text(run.reason)))
    facts += [("Warning", text(warning)) for warning in run.warnings]
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    going = (
        ""
        if run.status in ENDED_RUNS
        else f'<p class="muted">The run has not ended: this page shows it as of {text(when(now))}.</p>'
    )
    return f'<section id="run"><dl class="facts">{rows}</dl>{going}</section>'


def _problems(run: RunRecord) -> str:
    count = max(run.problem_count, len(run.problems))
    items = "".join(
        f'<li>{text(problem.render())} <span class="muted">({text(problem.code)})</span></li>'
        for problem in run.problems
    )
    more = (
        f'<p class="muted">and {count - len(run.problems):,} more: the receipt lists every one.</p>'
        if count > len(run.problems)
        else ""
    )
    verdict = "The spec was rejected: nothing was submitted." if run.status == "rejected" else ""
    return (
        f'<section id="problems"><h2>Problems ({count:,})</h2><p>{verdict}</p>'
        f'<ul class="problems">{items}</ul>{more}</section>'
    )


def _steps(order: Sequence[JobRecord | Reused], bars: Sequence[Bar], cost_of: CostOf | None) -> str:
    head = ["Step", "Job", "Queue", "Requested", "Status", "Attempts", "Ran", "vCPU-h", "GPU-h", "GiB-h"]
    if cost_of is not None:
        head.append("Cost (est.)")
    rows: list[list[str]] = []
    total = Usage()
    cost_total: float | None = None
    for job in order:
        if isinstance(job, Reused):
            rows.append(
                [text(job.step), f"<code>{text(job.job_id)}</code>", "", f"reused from run {text(job.run_id)}"]
                + ["—"] * (len(head) - 4)
            )
            continue
        ran = sum(bar.running_seconds for bar in bars if bar.job is job)
        usage = job.told_usage
        row = [
            text(job.step),
            f"<code>{text(job.job_id)}</code>",
            text(job.queue),
            text(_requested(job)),
            f'<span class="badge {_status(job).lower()}">{text(_status(job))}</span>',
            "—" if job.array_size else f"{job.attempts}/{job.max_attempts}",
            text(_duration(ran)),
            *(
                ("—",) * 3
                if usage is None
                else (hours(usage.vcpu_hours), hours(usage.gpu_hours), hours(usage.memory_gib_hours))
            ),
        ]
        if usage is not None:
            total = Usage(
                vcpu_hours=total.vcpu_hours + usage.vcpu_hours,
                gpu_hours=total.gpu_hours + usage.gpu_hours,
                memory_gib_hours=total.memory_gib_hours + usage.memory_gib_hours,
            )
        if cost_of is not None:
            cost = cost_of(job)
            row.append(dollars(cost))
            if cost is not None:
                cost_total = (cost_total or 0.0) + cost
        rows.append(row)
    totals = ["<!--total-->Total", "", "", "", "", "", ""]
    totals += [hours(total.vcpu_hours), hours(total.gpu_hours), hours(total.memory_gib_hours)]
    if cost_of is not None:
        totals.append(dollars(cost_total))
    rows.append(totals)
    note = (
        "<p class=\"muted\">Usage is requested resources × run time, over every attempt (an array's: its children's); "
        "recovered jobs are counted, reused steps are not (their run counted them).</p>"
    )
    numeric = frozenset(range(6, len(head)))
    return (
        f'<section id="steps"><h2>Steps: resources and usage</h2>{table(head, rows, numeric=numeric)}{note}</section>'
    )


def _failures(ordered: Sequence[JobRecord], summaries: Mapping[str, ChildSummary]) -> str:
    items: list[str] = []
    for job in ordered:
        told = False
        for end in job.attempt_ends:
            if end.failure or end.failure_class:
                items.append(_failure_item(job, _attempt_failure(end), end.attempt))
                told = True
        if job.status in TERMINAL and job.status != "SUCCEEDED" and not told:
            words = job.failure or job.status_reason or "Batch gave no reason"
            items.append(
                _failure_item(job, f"{'cancelled' if _status(job) == 'CANCELLED' else 'failed'}: {words}", None)
            )
        nodes = node_summary(job)
        if nodes is not None and nodes.failed:
            items.append(_nodes_item(job, nodes))
        summary = summaries.get(job.job_id)
        if summary is not None and summary.failed:
            items.append(_failure_item(job, f"{len(summary.failed):,} children failed (see Arrays and sweeps)", None))
        if job.recovery is not None:
            items.append(_failure_item(job, f"recovered: {job.recovery.words}", None, links=False))
        if job.recovery_final:
            items.append(_failure_item(job, f"not recovered: {job.recovery_final}", None, links=False))
    body = f'<ul class="failures">{"".join(items)}</ul>' if items else "<p>No failures.</p>"
    return f'<section id="failures"><h2>Failures</h2>{body}</section>'


def _failure_item(job: JobRecord, words: str, attempt: int | None, *, links: bool = True) -> str:
    chosen = [item for item in job.log_links if attempt is None or item.attempt == attempt] if links else []
    logs = " ".join(
        link(item.url, f"log of attempt {item.attempt}" + (f" ({item.container})" if item.container else ""))
        for item in chosen
    )
    return (
        f'<li data-job="{text(job.job_id)}"><strong>{text(job.step)}</strong> '
        f'<span class="muted">(job <code>{text(job.job_id)}</code>)</span>: {text(words)}'
        + (f" — {logs}" if logs else "")
        + "</li>"
    )


def _nodes_item(job: JobRecord, nodes: NodeSummary) -> str:
    """A multi-node job's nodes in one line (as Slack and `status` say it), with each failed node's log."""
    urls = (
        (node, stream_url(job.region, end.log_group, end.log_stream)) for node, end in nodes.failed[:MAX_NODE_LOG_LINKS]
    )
    logs = " ".join(link(url, f"log of node {node}") for node, url in urls if url)
    return (
        f'<li data-job="{text(job.job_id)}" class="nodes"><strong>{text(job.step)}</strong> '
        f'<span class="muted">(job <code>{text(job.job_id)}</code>)</span>: {text(nodes.words())}'
        + (f" — {logs}" if logs else "")
        + "</li>"
    )


def _attempt_failure(end: AttemptEnd) -> str:
    """One failed attempt in tracking's words, with its exit code and Batch's reasons."""
    node = f"node {end.node}: " if end.node is not None else ""
    words = retried_because(end)
    if end.exit_code is not None and f"code {end.exit_code}" not in words:
        words += f", exit {end.exit_code}"
    reasons = [reason for reason in (end.status_reason, end.reason) if reason and reason not in words]
    return node + words + (f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else "")


def _requested(job: JobRecord) -> str:
    resources = job.resources
    asked = f"{number(resources.vcpus)} vCPU, {gib(resources.memory_mib)}"
    if resources.gpus:
        asked += f", {resources.gpus} GPU"
    return asked + (f" × {job.array_size:,} children" if job.array_size else "")


def _status(job: JobRecord) -> str:
    """As people see it: Batch says FAILED for a job it cancelled; batchdrop says CANCELLED."""
    return "CANCELLED" if job.status == "FAILED" and job.failure_class == "cancelled" else job.status


def _duration(seconds: float) -> str:
    return human_duration(seconds) if seconds else "—"
