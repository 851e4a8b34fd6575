"""batchdrop events as Slack messages: Block Kit for people, a plain-text fallback for the rest.

Pure functions, no I/O: `render(event)` returns the body of one incoming-webhook post.

Every message opens with a header that says what happened to what, behind a
marker a reader can scan for (❌ failed, ✅ succeeded, 🚧 stuck, ⛔ rejected…).
Then comes what the reader needs next: for a failure its class in plain words
and what to do about it, Batch's reason and a link to every attempt's logs;
for a rejected spec its first problems with their lines; for a stuck job the
advice; for an array job its children by status. The facts (team, run, spec,
step, queue, duration) and links to the Batch console and the receipt follow.

Slack's limits (50 blocks, 3,000 characters a section, 150 a header, 10
fields, 75 a button) are kept by truncating with "…and N more"; user text is
escaped for mrkdwn (`&`, `<`, `>`), so a reason can never mention @channel or
break a link.
"""

from __future__ import annotations

from collections.abc import Sequence

from batchdrop.errors import Problem
from batchdrop.events.contract import JobStatusChanged, JobStuck, RunRejected, RunSubmitted, Usage
from batchdrop.notify.block_kit import (
    MAX_REASON_CHARS,
    MAX_SECTION_CHARS,
    MAX_URL_CHARS,
    Block,
    Fact,
    SlackMessage,
    button,
    chunks,
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
    quote_block,
    s3_console_url,
    section,
)

NotifiableEvent = RunSubmitted | RunRejected | JobStatusChanged | JobStuck

MAX_PROBLEMS_SHOWN = 5
MAX_JOBS_SHOWN = 20
MAX_WARNINGS_SHOWN = 5

MARKERS = {
    "submitted": "🚀",
    "rejected": "⛔",
    "pending": "⏳",
    "runnable": "⏳",
    "starting": "⏳",
    "running": "🏃",
    "succeeded": "✅",
    "failed": "❌",
    "lost": "❓",
    "stuck": "🚧",
    "cancelled": "🚫",
}
STATUS_ORDER = ["submitted", "pending", "runnable", "starting", "running", "succeeded", "failed", "lost"]

FAILURE_TITLES = {
    "spot_reclaim": "Spot instance reclaimed",
    "out_of_memory": "Out of memory",
    "non_zero_exit": "Non-zero exit",
    "image_pull": "Container image could not be pulled",
    "timeout": "Timed out",
    "cancelled": "Cancelled",
    "dependency": "A job it depends on failed",
    "lost": "Lost track of the job",
    "unknown": "Failed, cause unknown",
}
FAILURE_ADVICE = {
    "spot_reclaim": (
        "AWS took the spot instance back while the job ran; nothing was wrong with the job. "
        "Set `retries: {attempts: 3, on_spot_interruption: true}` in the spec and reclaims are retried for you."
    ),
    "out_of_memory": (
        "The program used more memory than the job asked for, and was killed. "
        "Raise `resources.memory_mib` in the spec (or make the program use less), then drop the file again."
    ),
    "non_zero_exit": "The program itself failed: its logs say why.",
    "image_pull": (
        "The job definition's container image could not be pulled (a missing tag, or no access to the registry). "
        "Job definitions belong to the platform team: tell them."
    ),
    "timeout": "An attempt ran past the spec's `timeout_minutes`. Raise it, or make the job faster.",
    "cancelled": "Someone or something cancelled the job; the reason below says who or why.",
    "dependency": "It never ran: a job it waits for (`depends_on`) failed. That job's message says why.",
    "lost": (
        "Batch forgets finished jobs after a day, and this one's end was never heard, so how it ended is unknown. "
        "Drop the spec again to rerun it."
    ),
    "unknown": "Batch gave no clear cause: its reason and the job's logs are the best clues.",
}


def render(event: NotifiableEvent) -> SlackMessage:
    """The Slack message for one batchdrop event."""
    if isinstance(event, RunSubmitted):
        return _run_submitted(event)
    if isinstance(event, RunRejected):
        return _run_rejected(event)
    if isinstance(event, JobStuck):
        return _job_stuck(event)
    return _job_status(event)


# ---------------------------------------------------------------- one function per event type


def _run_submitted(event: RunSubmitted) -> SlackMessage:
    subject = _spec_subject(event.spec_name, event.source_uri)
    count = plural(len(event.jobs), "job")
    blocks = [
        header(f"{MARKERS['submitted']} Submitted: {subject}"),
        section(f"*{count}* on their way to AWS Batch, from {_source_link(event.source_uri)}."),
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
    blocks += _actions(receipt_uri=event.receipt_uri)
    blocks.append(context(event.time, f"run {code(event.run_id)}"))
    text = (
        f"{MARKERS['submitted']} Submitted: {escape(subject)} — {count} "
        f"for team {escape(event.team)}, run {event.run_id}."
    )
    return message(text, blocks)


def _run_rejected(event: RunRejected) -> SlackMessage:
    subject = _spec_subject(event.spec_name, event.source_uri)
    total = max(event.problem_count, len(event.problems))
    problems = plural(total, "problem")
    blocks = [
        header(f"{MARKERS['rejected']} Rejected: {subject}"),
        section(
            f"{_source_link(event.source_uri)} was not submitted: *{problems}*. "
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
        receipt = link(s3_console_url(event.receipt_uri), _key_of(event.receipt_uri))
        blocks.append(section(f"*Receipt* (every problem, with its line and column)\n{receipt}"))
    blocks += _actions(receipt_uri=event.receipt_uri)
    blocks.append(context(event.time, f"`batchdrop status {escape(event.run_id)}`"))
    first = f"; first: {escape(clip(_problem_words(shown[0]), 300))}" if shown else ""
    text = f"{MARKERS['rejected']} Rejected: {escape(subject)} — {problems}{first}. Team {escape(event.team)}."
    return message(text, blocks)


def _job_status(event: JobStatusChanged) -> SlackMessage:
    failure = failure_kind(event)
    if failure == "cancelled":
        marker, word = MARKERS["cancelled"], "Cancelled"
    else:
        marker, word = MARKERS.get(event.status, "ℹ️"), event.status.capitalize()
    subject = _job_subject(event.spec_name, event.step)
    blocks = [header(f"{marker} {word}: {subject}")]
    if failure is not None:
        blocks.append(section(_failure_text(failure, event)))
    blocks.append(fields(_job_facts(event, duration_label="Ran for", seconds=event.duration_seconds)))
    if event.reason:
        blocks.append(section(f"*Batch says*\n{quote_block(event.reason)}"))
    if event.children:
        blocks.append(section(children_summary(event.children, event.array_size)))
    if event.usage is not None and event.status in {"succeeded", "failed", "lost"}:
        blocks.append(section(f"*Used* {_usage_text(event.usage)}"))
    blocks += _log_sections(event)
    latest = max(event.log_links, key=lambda item: item.attempt) if event.log_links else None
    blocks += _actions(
        logs_url=latest.url if latest else None,
        logs_label=f"Logs (attempt {latest.attempt})" if latest else "",
        console_url=event.console_url,
        receipt_uri=event.receipt_uri,
    )
    change = f"{escape(event.previous_status)} → {escape(event.status)}" if event.previous_status else None
    blocks.append(context(event.time, change, f"job {code(event.job_id)}", _source_link(event.source_uri)))
    cause = f" — {_failure_title(failure, event.exit_code)}" if failure is not None else ""
    if failure == "cancelled" and (event.failure or event.reason):  # who or why says more than the word again
        cause = f" — {escape(clip(event.failure or event.reason or '', 300))}"
    logs = f" Logs: {link(latest.url, f'attempt {latest.attempt}')}" if latest and failure is not None else ""
    text = (
        f"{marker} {word}: {escape(subject)}{cause}. "
        f"Team {escape(event.team)}, queue {escape(event.queue)}, run {event.run_id}.{logs}"
    )
    return message(text, blocks)


def _job_stuck(event: JobStuck) -> SlackMessage:
    subject = _job_subject(event.spec_name, event.step)
    waited = human_duration(event.runnable_seconds)
    blocks = [
        header(f"{MARKERS['stuck']} Stuck: {subject}"),
        section(
            f"Waiting in *runnable* for *{waited}* on queue {code(event.queue)}: Batch has not found a place to run it."
        ),
        section(f"*What to do*\n{escape(clip(event.advice, MAX_SECTION_CHARS - 20))}"),
        fields(_job_facts(event, duration_label="Waiting for", seconds=event.runnable_seconds)),
    ]
    if event.reason:
        blocks.append(section(f"*Batch says*\n{quote_block(event.reason)}"))
    if event.children:
        blocks.append(section(children_summary(event.children, event.array_size)))
    blocks += _actions(console_url=event.console_url, receipt_uri=event.receipt_uri)
    blocks.append(context(event.time, f"job {code(event.job_id)}", _source_link(event.source_uri)))
    text = (
        f"{MARKERS['stuck']} Stuck: {escape(subject)} has waited {waited} on queue {escape(event.queue)}. "
        f"Team {escape(event.team)}. {escape(clip(event.advice, 600))}"
    )
    return message(text, blocks)


# ---------------------------------------------------------------- the parts


def failure_kind(event: JobStatusChanged) -> str | None:
    """The failure class a failed or lost job is shown with; None for a job that did not fail."""
    if event.status not in {"failed", "lost"}:
        return None
    if event.failure_class is not None:
        return event.failure_class
    return "lost" if event.status == "lost" else "unknown"


def heard_about(notify_on: Sequence[str]) -> list[str]:
    """The statuses a run's messages come for: those asked for, and failures and stuck jobs always."""
    wanted = {*(status.lower() for status in notify_on), "failed", "stuck"}
    order = ["submitted", "running", "succeeded", "failed", "stuck"]
    return [status for status in order if status in wanted] + sorted(wanted - set(order))


def _failure_title(kind: str, exit_code: int | None) -> str:
    title = FAILURE_TITLES.get(kind, FAILURE_TITLES["unknown"])
    return f"{title} (exit code {exit_code})" if exit_code is not None and kind != "cancelled" else title


def _failure_text(kind: str, event: JobStatusChanged) -> str:
    lines = [f"*{_failure_title(kind, event.exit_code)}*"]
    said = {_failure_title(kind, event.exit_code).lower(), (event.reason or "").lower()}
    if event.failure and not any(event.failure.lower() in words for words in said):  # only words not said already
        lines.append(f"_{escape(clip(event.failure, MAX_REASON_CHARS))}_")
    lines.append(FAILURE_ADVICE.get(kind, FAILURE_ADVICE["unknown"]))
    return "\n".join(lines)


def _job_facts(event: JobStatusChanged | JobStuck, *, duration_label: str, seconds: float | None) -> list[Fact]:
    queue = f"{code(event.queue)} ({event.hardware.upper()})"
    exit_code = event.exit_code if isinstance(event, JobStatusChanged) else None
    return [
        ("Team", escape(event.team)),
        ("Run", code(event.run_id)),
        ("Spec", escape(event.spec_name)) if event.spec_name else None,
        ("Step", code(event.step)),
        ("Queue", queue),
        (duration_label, human_duration(seconds)) if seconds else None,
        ("Attempts", str(event.attempts)) if event.attempts else None,
        ("Exit code", str(exit_code)) if exit_code is not None else None,
        ("Array", f"{event.array_size:,} children") if event.array_size else None,
        ("Environment", escape(event.environment)) if event.environment else None,
    ]


def children_summary(children: dict[str, int], array_size: int | None) -> str:
    """`*Children* (1,000): ✅ 998 succeeded · ❌ 2 failed`, statuses in Batch's order."""
    counts: dict[str, int] = {}
    for status, count in children.items():
        counts[status.lower()] = counts.get(status.lower(), 0) + count
    ordered = sorted(
        (item for item in counts.items() if item[1]),
        key=lambda item: STATUS_ORDER.index(item[0]) if item[0] in STATUS_ORDER else len(STATUS_ORDER),
    )
    total = array_size or sum(counts.values())
    parts = [f"{MARKERS.get(status, '•')} {count:,} {escape(status)}" for status, count in ordered]
    return f"*Children* ({total:,}): " + (" · ".join(parts) if parts else "none reported yet")


def _usage_text(usage: Usage) -> str:
    parts = [f"{usage.vcpu_hours:,.1f} vCPU-hours"]
    if usage.gpu_hours:
        parts.append(f"{usage.gpu_hours:,.1f} GPU-hours")
    parts.append(f"{usage.memory_gib_hours:,.1f} GiB-hours of memory")
    return " · ".join(parts)


def _log_sections(event: JobStatusChanged) -> list[Block]:
    """Every attempt's log stream, never truncated: more links take more sections."""
    if not event.log_links:
        return []
    latest = max(item.attempt for item in event.log_links)
    lines = []
    for item in sorted(event.log_links, key=lambda item: (item.attempt, item.container or "")):
        label = f"Attempt {item.attempt}" + (f" · {item.container}" if item.container else "")
        note = " (latest)" if item.attempt == latest and latest > 1 else ""
        lines.append(f"• {link(item.url, label)}{note}")
    head = "*Logs of every attempt*" if latest > 1 else "*Logs*"
    return [section(chunk) for chunk in chunks([head, *lines], MAX_SECTION_CHARS)]


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


def _actions(
    *,
    logs_url: str | None = None,
    logs_label: str = "",
    console_url: str | None = None,
    receipt_uri: str | None = None,
) -> list[Block]:
    buttons = []
    if logs_url:
        buttons.append(button(logs_label or "Logs", logs_url, "open_logs"))
    if console_url:
        buttons.append(button("Batch console", console_url, "open_batch_console"))
    if receipt_uri:
        buttons.append(button("Receipt", s3_console_url(receipt_uri), "open_receipt"))
    buttons = [button for button in buttons if len(button["url"]) <= MAX_URL_CHARS]
    return [{"type": "actions", "elements": buttons}] if buttons else []


def _spec_subject(spec_name: str | None, source_uri: str) -> str:
    return spec_name or _key_of(source_uri).rsplit("/", 1)[-1]


def _job_subject(spec_name: str | None, step: str) -> str:
    if not spec_name:
        return step
    return spec_name if step == "main" else f"{spec_name} / {step}"  # a one-job spec's only step is `main`


def _source_link(source_uri: str) -> str:
    return link(s3_console_url(source_uri), _key_of(source_uri))


def _key_of(uri: str) -> str:
    return uri.removeprefix("s3://").partition("/")[2]
