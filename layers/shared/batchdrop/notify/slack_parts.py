"""The words and pieces every batchdrop Slack message shares: status markers, failures in plain words
and what to do about them, attempts' fates, subjects, links and buttons. Pure functions, no I/O;
`slack_blocks` (jobs) and `slack_runs` (runs) compose messages of them."""

from __future__ import annotations

from collections.abc import Sequence

from batchdrop.events.contract import AttemptTold, Usage
from batchdrop.notify.block_kit import MAX_URL_CHARS, Block, button, escape, human_duration, link, s3_console_url

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
    "recovering": "🔁",
}
STATUS_ORDER = ["submitted", "pending", "runnable", "starting", "running", "succeeded", "failed", "lost"]
ENDED = frozenset({"succeeded", "failed", "lost"})
"""A job in one of these has ended (in the events' lower case)."""

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
ATTEMPT_FATES = {
    "spot_reclaim": "was reclaimed",
    "out_of_memory": "ran out of memory",
    "non_zero_exit": "failed",
    "image_pull": "could not pull its image",
    "timeout": "timed out",
    "cancelled": "was cancelled",
    "dependency": "was stopped by a failed dependency",
    "lost": "was lost",
    "unknown": "failed",
}
"""How an attempt ended, as the end of "attempt 1 …"."""


def failure_title(kind: str, exit_code: int | None) -> str:
    title = FAILURE_TITLES.get(kind, FAILURE_TITLES["unknown"])
    return f"{title} (exit code {exit_code})" if exit_code is not None and kind != "cancelled" else title


def attempt_fate(attempt: AttemptTold, *, said: int = 200) -> str:
    """`attempt 1 was reclaimed after 7 min (Host EC2 (instance i-0abc) terminated)`: one ended attempt, in
    mrkdwn (Batch's words escaped)."""
    words = f"attempt {attempt.attempt}" + (f" of node {attempt.node}" if attempt.node is not None else "")
    if attempt.failure_class is None:
        words += " succeeded"
    else:
        words += " " + ATTEMPT_FATES.get(attempt.failure_class, ATTEMPT_FATES["unknown"])
    if attempt.duration_seconds:
        words += f" after {human_duration(attempt.duration_seconds)}"
    details = []
    if attempt.reason:
        reason = attempt.reason.strip().rstrip(".")
        details.append(escape(reason if len(reason) <= said else reason[: said - 1] + "…"))
    if attempt.exit_code is not None and attempt.failure_class not in (None, "cancelled"):
        details.append(f"exit code {attempt.exit_code}")
    return words + (f" ({', '.join(details)})" if details else "")


def children_counts(children: dict[str, int]) -> str:
    """`✅ 998 succeeded · ❌ 2 failed`, statuses in Batch's order (empty if none)."""
    counts: dict[str, int] = {}
    for status, count in children.items():
        counts[status.lower()] = counts.get(status.lower(), 0) + count
    ordered = sorted(
        (item for item in counts.items() if item[1]),
        key=lambda item: STATUS_ORDER.index(item[0]) if item[0] in STATUS_ORDER else len(STATUS_ORDER),
    )
    return " · ".join(f"{MARKERS.get(status, '•')} {count:,} {escape(status)}" for status, count in ordered)


def children_summary(children: dict[str, int], array_size: int | None) -> str:
    """`*Children* (1,000): ✅ 998 succeeded · ❌ 2 failed`."""
    total = array_size or sum(children.values())
    return f"*Children* ({total:,}): " + (children_counts(children) or "none reported yet")


def usage_text(usage: Usage) -> str:
    parts = [f"{usage.vcpu_hours:,.1f} vCPU-hours"]
    if usage.gpu_hours:
        parts.append(f"{usage.gpu_hours:,.1f} GPU-hours")
    parts.append(f"{usage.memory_gib_hours:,.1f} GiB-hours of memory")
    return " · ".join(parts)


def heard_about(notify_on: Sequence[str]) -> list[str]:
    """The statuses a run's messages come for: those asked for, and failures and stuck jobs always."""
    wanted = {*(status.lower() for status in notify_on), "failed", "stuck"}
    order = ["submitted", "running", "succeeded", "failed", "stuck"]
    return [status for status in order if status in wanted] + sorted(wanted - set(order))


def actions(
    *,
    logs_url: str | None = None,
    logs_label: str = "",
    console_url: str | None = None,
    receipt_uri: str | None = None,
    report_uri: str | None = None,
) -> list[Block]:
    buttons = []
    if logs_url:
        buttons.append(button(logs_label or "Logs", logs_url, "open_logs"))
    if console_url:
        buttons.append(button("Batch console", console_url, "open_batch_console"))
    if report_uri:
        buttons.append(button("Report", s3_console_url(report_uri), "open_report"))
    if receipt_uri:
        buttons.append(button("Receipt", s3_console_url(receipt_uri), "open_receipt"))
    buttons = [button for button in buttons if len(button["url"]) <= MAX_URL_CHARS]
    return [{"type": "actions", "elements": buttons}] if buttons else []


def spec_subject(spec_name: str | None, source_uri: str) -> str:
    return spec_name or key_of(source_uri).rsplit("/", 1)[-1]


def job_subject(spec_name: str | None, step: str) -> str:
    if not spec_name:
        return step
    return spec_name if step == "main" else f"{spec_name} / {step}"  # a one-job spec's only step is `main`


def source_link(source_uri: str) -> str:
    return link(s3_console_url(source_uri), key_of(source_uri))


def dropped_by(who: str | None) -> str:
    """` (dropped by AWS:AROA…:alice)`, or nothing when S3 named no one."""
    return f" (dropped by {escape(who)})" if who else ""


def key_of(uri: str) -> str:
    return uri.removeprefix("s3://").partition("/")[2]
