"""batchdrop events as Slack messages: Block Kit for people, a plain-text fallback for the rest.

Pure functions, no I/O: `render(event)` returns the body of one incoming-webhook post.

Every message opens with a header that says what happened to what, behind a
marker a reader can scan for (❌ failed, ✅ succeeded, 🔁 recovering, 🚧 stuck, ⛔ rejected…).
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

from batchdrop.events.contract import (
    AttemptTold,
    JobRecovering,
    JobStatusChanged,
    JobStuck,
    LogLink,
    RunEnded,
    RunRejected,
    RunSubmitted,
    TeamBudget,
)
from batchdrop.notify.block_kit import (
    MAX_REASON_CHARS,
    MAX_SECTION_CHARS,
    Block,
    Fact,
    SlackMessage,
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
    quote_block,
    section,
)
from batchdrop.notify.slack_budgets import team_budget
from batchdrop.notify.slack_nodes import nodes_section, nodes_text
from batchdrop.notify.slack_parts import (
    ENDED,
    FAILURE_ADVICE,
    FAILURE_TITLES,
    MARKERS,
    actions,
    attempt_fate,
    children_summary,
    failure_title,
    job_subject,
    source_link,
    usage_text,
)
from batchdrop.notify.slack_runs import run_ended, run_rejected, run_submitted
from batchdrop.units import gib

__all__ = ["FAILURE_ADVICE", "FAILURE_TITLES", "NotifiableEvent", "failure_kind", "render"]

NotifiableEvent = RunSubmitted | RunRejected | RunEnded | JobStatusChanged | JobRecovering | JobStuck | TeamBudget


def render(event: NotifiableEvent) -> SlackMessage:
    """The Slack message for one batchdrop event."""
    if isinstance(event, RunSubmitted):
        return run_submitted(event)
    if isinstance(event, RunRejected):
        return run_rejected(event)
    if isinstance(event, RunEnded):
        return run_ended(event)
    if isinstance(event, JobStuck):
        return _job_stuck(event)
    if isinstance(event, JobRecovering):
        return _job_recovering(event)
    if isinstance(event, TeamBudget):
        return team_budget(event)
    return _job_status(event)


# ---------------------------------------------------------------- one function per event type


def _job_status(event: JobStatusChanged) -> SlackMessage:
    failure = failure_kind(event)
    if failure == "cancelled":
        marker, word = MARKERS["cancelled"], "Cancelled"
    else:
        marker, word = MARKERS.get(event.status, "ℹ️"), event.status.capitalize()
    subject = job_subject(event.spec_name, event.step)
    blocks = [header(f"{marker} {word}: {subject}")]
    if failure is not None:
        blocks.append(section(_failure_text(failure, event)))
    earlier = [attempt_fate(attempt) for attempt in _earlier_attempts(event)]
    if earlier:
        blocks.append(section(_attempts_text(event, earlier)))
    ran = event.duration_seconds if event.status in ENDED else None  # never an earlier attempt's, as this one's
    blocks.append(fields(_job_facts(event, duration_label="Ran for", seconds=ran)))
    if event.reason:
        blocks.append(section(f"*Batch says*\n{quote_block(event.reason)}"))
    if event.children:
        blocks.append(section(children_summary(event.children, event.array_size)))
    if event.nodes:
        blocks.append(nodes_section(event.nodes))
    if event.usage is not None and event.status in {"succeeded", "failed", "lost"}:
        blocks.append(section(f"*Used* {usage_text(event.usage)}"))
    blocks += _log_sections(event)
    latest = _latest_logs(event)
    blocks += _job_actions(event, latest)
    change = f"{escape(event.previous_status)} → {escape(event.status)}" if event.previous_status else None
    blocks.append(context(event.time, change, f"job {code(event.job_id)}", source_link(event.source_uri)))
    cause = f" — {failure_title(failure, event.exit_code)}" if failure is not None else ""
    if failure == "cancelled" and (event.failure or event.reason):  # who or why says more than the word again
        cause = f" — {escape(clip(event.failure or event.reason or '', 300))}"
    logs = f" Logs: {link(latest.url, f'attempt {latest.attempt}')}" if latest and failure is not None else ""
    if earlier and event.status not in ENDED:
        cause = f" — attempt {event.attempts}; {earlier[-1]}"
    text = (
        f"{marker} {word}: {escape(subject)}{cause}. "
        f"Team {escape(event.team)}, queue {escape(event.queue)}, run {event.run_id}.{logs}"
        + (("." if logs else "") + nodes_text(event.nodes) if event.nodes else "")
    )
    return message(text, blocks)


def _job_stuck(event: JobStuck) -> SlackMessage:
    subject = job_subject(event.spec_name, event.step)
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
    blocks += actions(console_url=event.console_url, receipt_uri=event.receipt_uri)
    blocks.append(context(event.time, f"job {code(event.job_id)}", source_link(event.source_uri)))
    text = (
        f"{MARKERS['stuck']} Stuck: {escape(subject)} has waited {waited} on queue {escape(event.queue)}. "
        f"Team {escape(event.team)}. {escape(clip(event.advice, 600))}"
    )
    return message(text, blocks)


def _job_recovering(event: JobRecovering) -> SlackMessage:
    """`🔁 Recovering: detector / train — ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)`."""
    marker = MARKERS["recovering"]
    subject = job_subject(event.spec_name, event.step)
    recovery = event.recovery
    words = escape(clip(recovery.words, MAX_REASON_CHARS))
    new_job = f"A new job asks for *{gib(recovery.memory_mib)}* on queue {code(recovery.queue)}"
    blocks = [
        header(f"{marker} Recovering: {subject}"),
        section(f"*{words[:1].upper()}{words[1:]}*\n{new_job}: you will hear how it ends."),
    ]
    earlier = [attempt_fate(attempt) for attempt in event.attempt_history or [] if attempt.node is None]
    if earlier:
        blocks.append(section(pack([f"• {line}" for line in earlier], more=0, noun="attempt", head="*Attempts*")))
    blocks.append(fields(_job_facts(event, duration_label="Ran for", seconds=None)))
    if event.reason:
        blocks.append(section(f"*Batch says*\n{quote_block(event.reason)}"))
    blocks += _log_sections(event)
    blocks += _job_actions(event, _latest_logs(event))
    blocks.append(context(event.time, f"job {code(event.job_id)} → recovery {recovery.number}",
                          source_link(event.source_uri)))  # fmt: skip
    text = (
        f"{marker} Recovering: {escape(subject)} — {escape(clip(recovery.words, 600))}. "
        f"Team {escape(event.team)}, queue {escape(event.queue)}, run {event.run_id}."
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


def _failure_text(kind: str, event: JobStatusChanged) -> str:
    lines = [f"*{failure_title(kind, event.exit_code)}*"]
    said = {failure_title(kind, event.exit_code).lower(), (event.reason or "").lower()}
    if event.failure and not any(event.failure.lower() in words for words in said):  # only words not said already
        lines.append(f"_{escape(clip(event.failure, MAX_REASON_CHARS))}_")
    lines.append(FAILURE_ADVICE.get(kind, FAILURE_ADVICE["unknown"]))
    return "\n".join(lines)


def _job_facts(
    event: JobStatusChanged | JobRecovering | JobStuck, *, duration_label: str, seconds: float | None
) -> list[Fact]:
    queue = f"{code(event.queue)} ({event.hardware.upper()})"
    exit_code = event.exit_code if isinstance(event, JobStatusChanged | JobRecovering) else None
    return [
        ("Team", escape(event.team)),
        ("Run", code(event.run_id)),
        ("Spec", escape(event.spec_name)) if event.spec_name else None,
        ("Step", code(event.step)),
        ("Queue", queue),
        (duration_label, human_duration(seconds)) if seconds else None,
        (_attempts_label(event), str(event.attempts)) if event.attempts else None,
        ("Exit code", str(exit_code)) if exit_code is not None else None,
        ("Array", f"{event.array_size:,} children") if event.array_size else None,
        ("Environment", escape(event.environment)) if event.environment else None,
    ]


def _attempts_label(event: JobStatusChanged | JobRecovering | JobStuck) -> str:
    """A job that has ended made its attempts; one still going is in one of them."""
    return "Attempts" if event.status in ENDED or isinstance(event, JobRecovering) else "Attempt"


def _earlier_attempts(event: JobStatusChanged) -> list[AttemptTold]:
    """The job's attempts before the one this message is about, that failed (its own end is told above)."""
    return [
        attempt
        for attempt in event.attempt_history or []
        if attempt.node is None and attempt.attempt < event.attempts and attempt.failure_class is not None
    ]


def _attempts_text(event: JobStatusChanged, earlier: list[str]) -> str:
    """`*Attempt 2* — attempt 1 was reclaimed (…)`; once the job has ended, its earlier attempts' fates."""
    if event.status not in ENDED and len(earlier) == 1:
        return f"*Attempt {event.attempts}* — {earlier[0]}"
    head = "*Earlier attempts*" if event.status in ENDED else f"*Attempt {event.attempts}*, after"
    return pack([f"• {line}" for line in earlier], more=0, noun="attempt", head=head)


def _latest_logs(event: JobStatusChanged | JobRecovering) -> LogLink | None:
    return max(event.log_links, key=lambda item: item.attempt) if event.log_links else None


def _job_actions(event: JobStatusChanged | JobRecovering, latest: LogLink | None) -> list[Block]:
    """The buttons of a job's message: its latest attempt's logs, the console, the receipt."""
    return actions(
        logs_url=latest.url if latest else None,
        logs_label=f"Logs (attempt {latest.attempt})" if latest else "",
        console_url=event.console_url,
        receipt_uri=event.receipt_uri,
    )


def _log_sections(event: JobStatusChanged | JobRecovering) -> list[Block]:
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
