"""A run's Slack messages: submitted, rejected, and the one summary of a pipeline that ended.

Pure functions, no I/O; built of `slack_parts` and Block Kit pieces (`block_kit`), like the job
messages of `slack_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence

from batchdrop.errors import Problem
from batchdrop.events.contract import RunEnded, RunRejected, RunStep, RunSubmitted
from batchdrop.notify.block_kit import (
    MAX_REASON_CHARS,
    SlackMessage,
    clip,
    code,
    context,
    escape,
    fields,
    header,
    human_duration,
    link,
    message,
    pack,
    plural,
    s3_console_url,
    section,
)
from batchdrop.notify.slack_parts import (
    MARKERS,
    actions,
    children_counts,
    dropped_by,
    failure_title,
    heard_about,
    key_of,
    source_link,
    spec_subject,
    usage_text,
)
from batchdrop.platform.costs import money_words

MAX_PROBLEMS_SHOWN = 5
MAX_JOBS_SHOWN = 20
MAX_WARNINGS_SHOWN = 5
MAX_STEPS_SHOWN = 50
"""A spec has at most 50 steps: every one is listed (`pack` counts any that do not fit a section)."""


def run_submitted(event: RunSubmitted) -> SlackMessage:
    subject = spec_subject(event.spec_name, event.source_uri)
    count = plural(len(event.jobs), "job")
    blocks = [
        header(f"{MARKERS['submitted']} Submitted: {subject}"),
        section(
            f"*{count}* on their way to AWS Batch, from {source_link(event.source_uri)}{dropped_by(event.dropped_by)}."
        ),
        fields(
            [
                ("Team", escape(event.team)),
                ("Run", code(event.run_id)),
                ("Environment", escape(event.environment)) if event.environment else None,
                ("You will hear about", escape(", ".join(heard_about(event.notify_on)))),
            ]
        ),
    ]
    job_lines = [_job_line(job.step, job.queue, job.hardware, job.array_size, job.depends_on) for job in event.jobs]
    if job_lines:
        blocks.append(
            section(pack(job_lines[:MAX_JOBS_SHOWN], more=len(job_lines) - MAX_JOBS_SHOWN, noun="job", head="*Jobs*"))
        )
    if event.warnings:
        warnings = [f"⚠️ {escape(clip(warning, MAX_REASON_CHARS))}" for warning in event.warnings]
        blocks.append(
            section(pack(warnings[:MAX_WARNINGS_SHOWN], more=len(warnings) - MAX_WARNINGS_SHOWN, noun="warning"))
        )
    blocks += actions(receipt_uri=event.receipt_uri)
    blocks.append(context(event.time, f"run {code(event.run_id)}"))
    text = (
        f"{MARKERS['submitted']} Submitted: {escape(subject)} — {count} "
        f"for team {escape(event.team)}, run {event.run_id}{dropped_by(event.dropped_by)}."
    )
    return message(text, blocks)


def run_rejected(event: RunRejected) -> SlackMessage:
    subject = spec_subject(event.spec_name, event.source_uri)
    total = max(event.problem_count, len(event.problems))
    problems = plural(total, "problem")
    blocks = [
        header(f"{MARKERS['rejected']} Rejected: {subject}"),
        section(
            f"{source_link(event.source_uri)}{dropped_by(event.dropped_by)} was not submitted: *{problems}*. "
            "Nothing ran; fix the file and drop it again."
        ),
    ]
    shown = event.problems[:MAX_PROBLEMS_SHOWN]
    if shown:
        lines = [_problem_line(problem) for problem in shown]
        where = " in the receipt" if event.receipt_uri else ""
        blocks.append(section(pack(lines, more=total - len(shown), noun="problem", where=where)))
    blocks.append(
        fields(
            [
                ("Team", escape(event.team)),
                ("Run", code(event.run_id)),
                ("Environment", escape(event.environment)) if event.environment else None,
            ]
        )
    )
    if event.receipt_uri:
        receipt = link(s3_console_url(event.receipt_uri), key_of(event.receipt_uri))
        blocks.append(section(f"*Receipt* (every problem, with its line and column)\n{receipt}"))
    blocks += actions(receipt_uri=event.receipt_uri)
    blocks.append(context(event.time, f"`batchdrop status {escape(event.run_id)}`"))
    first = f"; first: {escape(clip(_problem_words(shown[0]), 300))}" if shown else ""
    text = (
        f"{MARKERS['rejected']} Rejected: {escape(subject)} — {problems}{first}. "
        f"Team {escape(event.team)}{dropped_by(event.dropped_by)}."
    )
    return message(text, blocks)


def run_ended(event: RunEnded) -> SlackMessage:
    """One message for a whole run: each step's end, how long it took, what it used."""
    marker = MARKERS[event.status]
    subject = spec_subject(event.spec_name, event.source_uri)
    steps = plural(event.step_count, "step")
    took = human_duration(event.duration_seconds) if event.duration_seconds else None
    why = event.reason if event.status != "succeeded" and event.reason else None
    opening = f"*{steps}*{f' in *{took}*' if took else ''}, from {source_link(event.source_uri)}"
    opening += f"{dropped_by(event.dropped_by)}."
    if why:
        opening += f"\n*Why:* {escape(clip(why, MAX_REASON_CHARS))}"
    blocks = [
        header(f"{marker} Run {event.status}: {subject}"),
        section(opening),
        fields(
            [
                ("Team", escape(event.team)),
                ("Run", code(event.run_id)),
                ("Environment", escape(event.environment)) if event.environment else None,
            ]
        ),
    ]
    lines = [_step_line(step) for step in event.steps[:MAX_STEPS_SHOWN]]
    blocks.append(section(pack(lines, more=event.step_count - len(lines), noun="step", head="*Steps*")))
    if event.usage is not None:
        cost = f" · about *{money_words(event.cost_usd)}*" if event.cost_usd is not None else ""
        blocks.append(section(f"*Used* {usage_text(event.usage)}{cost}"))
    blocks += actions(report_uri=event.report_uri, receipt_uri=event.receipt_uri)
    change = f"{escape(event.previous_status)} → {escape(event.status)}" if event.previous_status else None
    blocks.append(context(event.time, change, f"`batchdrop status {escape(event.run_id)}`"))
    text = (
        f"{marker} Run {event.status}: {escape(subject)} — {steps}{f' in {took}' if took else ''}."
        f"{f' {escape(clip(why, 300))}.' if why else ''} Team {escape(event.team)}, run {event.run_id}."
    )
    return message(text, blocks)


def _step_line(step: RunStep) -> str:
    """`• ✅ `prep` · 4 min 10 s · `cpu-shared` (CPU)`, then children, attempts, a reused step's run; under it
    a recovered step's whole chain on one line (`RunStep.story`), or a failure's words."""
    cancelled = step.failure_class == "cancelled"
    marker = MARKERS["cancelled"] if cancelled else MARKERS.get(step.status, "•")
    parts = [f"{marker} {code(step.step)}"]
    if step.status != "succeeded":
        parts.append("cancelled" if cancelled else escape(step.status))
    if step.duration_seconds:
        parts.append(human_duration(step.duration_seconds))
    parts.append(f"{code(step.queue)} ({step.hardware.upper()})")
    if step.children:
        parts.append(children_counts(step.children))
    if step.attempts > 1:
        parts.append(plural(step.attempts, "attempt"))
    if step.usage is not None and (step.usage.vcpu_hours or step.usage.gpu_hours):
        gpu = f", {step.usage.gpu_hours:,.1f} GPU-h" if step.usage.gpu_hours else ""
        parts.append(f"{step.usage.vcpu_hours:,.1f} vCPU-h{gpu}")
    if step.reused_from:
        parts.append(f"reused (run {code(step.reused_from)})")
    line = "• " + " · ".join(parts)
    if step.story:  # its whole recovery chain, to how it ended: the failure's words are in it
        return line + f"\n    {MARKERS['recovering']} {escape(clip(step.story, MAX_REASON_CHARS))}"
    for recovery in step.recoveries or []:  # a summary from before steps kept their story
        line += f"\n    {MARKERS['recovering']} {escape(clip(recovery.words, 300))}"
    if step.status != "succeeded" and step.failure_class and not cancelled:
        title = failure_title(step.failure_class, step.exit_code)
        said = step.failure and step.failure.lower() not in title.lower()  # only words not said already
        words = f": {escape(clip(step.failure or '', 300))}" if said else ""
        line += f"\n    _{title}{words}_"
    elif cancelled and step.failure:
        line += f"\n    _{escape(clip(step.failure, 300))}_"
    return line


def _problem_line(problem: Problem) -> str:
    where = f"*line {problem.line}" + (f", column {problem.column}*" if problem.column else "*") if problem.line else ""
    path = code(problem.path) if problem.path else "the whole file"
    # Messages quote field names in backticks on purpose: they render as code.
    message = escape(clip(problem.message, 500))
    return "• " + " · ".join(part for part in (where, path) if part) + f": {message}"


def _problem_words(problem: Problem) -> str:
    where = f"line {problem.line}" + (f", column {problem.column}" if problem.column else "") if problem.line else ""
    return ": ".join(part for part in (where, problem.path, problem.message) if part)


def _job_line(step: str, queue: str, hardware: str, array_size: int | None, depends_on: Sequence[str]) -> str:
    line = f"• {code(step)} → {code(queue)} ({hardware.upper()})"
    if array_size:
        line += f" · array of {array_size:,}"
    if depends_on:
        line += " · after " + ", ".join(code(name) for name in depends_on)
    return line
