"""The report's charts, as inline SVG: the timeline (a row per attempt of each job, a row per reused
step), an array's children by status, its children by the attempts they made, and by their run times."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from batchdrop.notify.block_kit import human_duration
from batchdrop.report.markup import text, when
from batchdrop.report.timeline import Bar, time_span
from batchdrop.store.child_states import bucket_bounds, run_time_quantile
from batchdrop.store.records import JobRecord, RunRecord

WIDTH = 1000
"""The timeline's SVG units across (it is drawn to any width: `preserveAspectRatio="none"`)."""
STATUS_COLOURS = {
    "SUCCEEDED": "#1a7f37",
    "FAILED": "#cf222e",
    "RUNNING": "#0969da",
    "STARTING": "#54aeff",
    "RUNNABLE": "#8c959f",
    "PENDING": "#afb8c1",
    "SUBMITTED": "#d0d7de",
    "not heard of": "#eaeef2",
}


@dataclass(frozen=True)
class Reused:
    """A step a resumed run did not run again: its job is an earlier run's."""

    step: str
    job_id: str
    run_id: str


def timeline(run: RunRecord, rows: Sequence[Bar | Reused], *, now: datetime) -> str:
    """One row per bar (queued, then running, coloured by outcome) and per reused step (no time here), in
    the order given."""
    bars = [row for row in rows if isinstance(row, Bar)]
    start, end = time_span(run, bars, now=now)
    span = max((end - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        return round((moment - start).total_seconds() / span * WIDTH, 2)

    items = [_bar_row(row, x) if isinstance(row, Bar) else _reused_row(row) for row in rows]
    axis = (
        f'<div class="axis"><span></span><div class="ticks"><span>{text(when(start))}</span>'
        f"<span>+{text(human_duration(span / 2))}</span><span>+{text(human_duration(span))}</span></div></div>"
    )
    legend = (
        '<div class="legend"><span><i style="background:#8c959f;opacity:.55"></i>waiting (queued, or for the steps '
        'before it)</span><span><i style="background:#1a7f37"></i>ran, succeeded</span>'
        '<span><i style="background:#cf222e"></i>ran, failed</span>'
        '<span><i style="background:#0969da"></i>running</span>'
        '<span><i style="background:#bf8700"></i>cancelled</span></div>'
    )
    return f'{legend}<ol class="timeline">{"".join(items)}</ol>{axis}'


def _reused_row(item: Reused) -> str:
    return (
        f'<li class="reused" data-step="{text(item.step)}" data-job="{text(item.job_id)}">'
        f'<span class="bar-label">{text(item.step)} <span class="tag reused">reused</span>'
        f"<small>from run {text(item.run_id)} (job {text(item.job_id)}): not run again</small></span>"
        f'<svg class="track" viewBox="0 0 {WIDTH} 18" preserveAspectRatio="none" role="img" '
        f'aria-label="{text(item.step)}: reused"><title>{text(item.step)}: reused from run '
        f"{text(item.run_id)}</title></svg></li>"
    )


def _bar_row(bar: Bar, place: Callable[[datetime], float]) -> str:
    job = bar.job
    rects = []
    for segment in bar.segments:
        left = place(segment.start)
        width = max(place(segment.end) - left, 2.0)  # a moment still shows
        kind = "queued" if segment.phase == "queued" else f"run-{bar.outcome}"
        height = 'y="5" height="8"' if segment.phase == "queued" else 'y="1" height="16"'
        rects.append(
            f'<rect class="{kind}" x="{left:.2f}" width="{width:.2f}" {height}>'
            f"<title>{text(segment.phase)} {text(human_duration(segment.seconds))}</title></rect>"
        )
    tags = "".join(_tags(job, bar))
    words = _attempt_words(bar)
    summary = (
        f"{bar.label}: {bar.outcome}; queued {human_duration(bar.queued_seconds)}, "
        f"ran {human_duration(bar.running_seconds)}"
    )
    return (
        f'<li class="bar" data-step="{text(job.step)}" data-job="{text(job.job_id)}" data-attempt="{bar.attempt}" '
        f'data-outcome="{bar.outcome}"><span class="bar-label">{text(bar.label)} '
        f'<span class="badge {bar.outcome}">{bar.outcome}</span>{tags}<small>{text(words)}</small></span>'
        f'<svg class="track" viewBox="0 0 {WIDTH} 18" preserveAspectRatio="none" role="img" '
        f'aria-label="{text(summary)}"><title>{text(summary)}</title>{"".join(rects)}</svg></li>'
    )


def _tags(job: JobRecord, bar: Bar) -> list[str]:
    tags = []
    if job.array_size:
        tags.append(f'<span class="tag">array of {job.array_size:,}</span>')
    if job.recovers and bar.attempt == 1:
        tags.append(
            f'<span class="tag recovered" title="{text(job.recovers)}">recovery of job {text(job.recovers)}</span>'
        )
    if job.recovered_by and bar.last:
        by = text(job.recovered_by)
        tags.append(f'<span class="tag recovered" title="{by}">recovered by job {by}</span>')
    return tags


def _attempt_words(bar: Bar) -> str:
    parts = [f"queued {human_duration(bar.queued_seconds)}"]
    if bar.running_seconds or bar.outcome in {"succeeded", "running"}:
        parts.append(f"ran {human_duration(bar.running_seconds)}")
    if bar.end is not None and bar.end.failure:
        parts.append(bar.end.failure)
    elif bar.outcome == "failed" and bar.last and bar.job.failure:
        parts.append(bar.job.failure)
    return "; ".join(parts)


def status_strip(counts: Mapping[str, int], size: int) -> str:
    """An array's children by status, as one stacked bar."""
    total = max(size, sum(counts.values()), 1)
    left = 0.0
    rects = []
    for status, count in counts.items():
        width = count / total * WIDTH
        colour = STATUS_COLOURS.get(status, "#eaeef2")
        rects.append(
            f'<rect x="{left:.2f}" width="{width:.2f}" y="0" height="18" fill="{colour}">'
            f"<title>{text(status)}: {count:,}</title></rect>"
        )
        left += width
    return (
        f'<svg class="track" viewBox="0 0 {WIDTH} 18" preserveAspectRatio="none" role="img" '
        f'aria-label="children by status">{"".join(rects)}</svg>'
    )


def histogram(by_attempts: Mapping[int, int]) -> str:
    """Ended children by the attempts they made: a bar per count of attempts."""
    if not by_attempts:
        return ""
    tallest = max(by_attempts.values())
    width, height, gap = 60, 100, 14
    bars = []
    for position, (attempts, count) in enumerate(sorted(by_attempts.items())):
        left = 30 + position * (width + gap)
        tall = max(count / tallest * height, 1.0)
        bars.append(
            f'<g class="column" data-attempts="{attempts}" data-children="{count}">'
            f'<rect x="{left}" y="{120 - tall:.1f}" width="{width}" height="{tall:.1f}" fill="#0969da">'
            f"<title>{count:,} children made {attempts} attempt(s)</title></rect>"
            f'<text x="{left + width / 2}" y="{114 - tall:.1f}" text-anchor="middle">{count:,}</text>'
            f'<text x="{left + width / 2}" y="136" text-anchor="middle">{attempts} att.</text></g>'
        )
    total_width = 30 + len(by_attempts) * (width + gap) + 10
    return (
        f'<svg class="chart" viewBox="0 0 {total_width} 142" role="img" '
        f'aria-label="ended children by attempts made" style="max-width:{total_width}px">{"".join(bars)}</svg>'
    )


def run_time_histogram(run_times: Mapping[int, int]) -> str:
    """Ended children by their last attempt's run time: a bar per bucket (√2 apart, so a log scale), from the
    shortest bucket counted to the longest, with the median's and the 90th percentile's buckets marked."""
    if not run_times:
        return ""
    first, last = min(run_times), max(run_times)
    tallest = max(run_times.values())
    median, p90 = run_time_quantile(run_times, 0.5), run_time_quantile(run_times, 0.9)
    marks = {p90: "p90", median: "median"} if median != p90 else {median: "median, p90"}
    step, width, left_margin = 24, 20, 8
    bars = []
    for position, bucket in enumerate(range(first, last + 1)):
        count = run_times.get(bucket, 0)
        low, high = bucket_bounds(bucket)
        left = left_margin + position * step
        tall = count / tallest * 90 if count else 0.0
        upto = "and longer" if math.isinf(high) else f"to {human_duration(high)}"
        label = (
            f'<text x="{left + width / 2}" y="134" text-anchor="middle">{text(human_duration(low))}</text>'
            if position % 3 == 0
            else ""
        )
        mark = marks.get(bucket)
        flag = (
            f'<text class="mark" x="{left + width / 2}" y="{112 - tall - 6:.1f}" text-anchor="middle">{mark}</text>'
            if mark
            else ""
        )
        bars.append(
            f'<g class="bucket" data-from="{low:g}" data-to="{high:g}" data-children="{count}">'
            f'<rect x="{left}" y="{116 - tall:.1f}" width="{width}" height="{max(tall, 0.5):.1f}" '
            f'fill="{"#bf8700" if mark else "#0969da"}"><title>{count:,} children ran '
            f"{text(human_duration(low))} {text(upto)}</title></rect>{label}{flag}</g>"
        )
    total_width = left_margin + (last - first + 1) * step + 16
    return (
        f'<svg class="chart" viewBox="0 0 {total_width} 142" role="img" '
        f'aria-label="ended children by run time" style="max-width:{min(2 * total_width, 640)}px">'
        f'<line x1="{left_margin}" y1="116.5" x2="{total_width - 8}" y2="116.5" stroke="#d1d9e0"/>'
        f"{''.join(bars)}</svg>"
    )
