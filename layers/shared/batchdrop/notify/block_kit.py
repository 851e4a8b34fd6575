"""Slack's Block Kit as batchdrop builds it: the message, its blocks, mrkdwn text, and Slack's limits
(50 blocks, 3,000 characters a section, 150 a header, 10 fields, 75 a button) kept by truncating with
"…and N more". Nothing here knows batchdrop's events: `slack_blocks` composes them into messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

Block = dict[str, Any]
Fact = tuple[str, str] | None
"""A field of a facts section (label, mrkdwn value); None leaves it out."""

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_CHARS = 2000
MAX_BUTTON_TEXT_CHARS = 75
MAX_URL_CHARS = 3000
MAX_TEXT_CHARS = 3000
MAX_REASON_CHARS = 1000
"""A reason or warning quoted in a message at most."""
"""The fallback text: Slack allows far more, but a notification preview shows a line or two."""


class SlackMessage(BaseModel):
    """One incoming-webhook post: Block Kit `blocks`, and `text` for clients that cannot show them."""

    model_config = ConfigDict(frozen=True)

    text: str
    blocks: list[Block]

    def payload(self) -> dict[str, Any]:
        # Console links would unfurl into big, useless previews.
        return {"text": self.text, "blocks": self.blocks, "unfurl_links": False, "unfurl_media": False}


def button(label: str, url: str, action_id: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(label, MAX_BUTTON_TEXT_CHARS), "emoji": True},
        "url": url,
        "action_id": action_id,
    }


def context(moment: datetime, *parts: str | None) -> Block:
    elements = [f"batchdrop · {slack_date(moment)}", *(part for part in parts if part)]
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip_markup(text, MAX_CONTEXT_CHARS)} for text in elements[:MAX_CONTEXT_ELEMENTS]
        ],
    }


def fields(facts: list[Fact]) -> Block:
    present = [fact for fact in facts if fact is not None][:MAX_FIELDS]
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip_markup(f"*{label}*\n{value}", MAX_FIELD_CHARS)} for label, value in present
        ],
    }


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER_CHARS), "emoji": True}}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip_markup(text, MAX_SECTION_CHARS)}}


def message(text: str, blocks: list[Block]) -> SlackMessage:
    if len(blocks) > MAX_BLOCKS:  # not reached by the layouts above; a guard, should one grow
        dropped = len(blocks) - (MAX_BLOCKS - 1)
        blocks = [*blocks[: MAX_BLOCKS - 1], section(f"…and {dropped} more blocks")]
    return SlackMessage(text=clip_markup(text, MAX_TEXT_CHARS), blocks=blocks)


# ---------------------------------------------------------------- text


def escape(text: str) -> str:
    """User text made safe for mrkdwn: Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    return "`" + escape(text).replace("`", "ˋ") + "`"


def link(url: str, label: str) -> str:
    """A mrkdwn link; `|` would end the URL early, so it is percent-encoded."""
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


def quote_block(text: str) -> str:
    """Text shown as a quote, every line of it."""
    return "\n".join(f">{escape(line)}" for line in clip(text, MAX_REASON_CHARS).splitlines() or [""])


def s3_console_url(uri: str) -> str:
    """`s3://bucket/key` -> the object's page in the S3 console."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={quote(key)}"


def slack_date(moment: datetime) -> str:
    """A time each reader sees in their own time zone, with UTC as the fallback."""
    utc = moment.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def human_duration(seconds: float | None) -> str:
    """`3 h 12 min`, `45 s`, `2 d 5 h`."""
    total = round(seconds or 0)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip_markup(text: str, limit: int) -> str:
    """Clip mrkdwn without leaving half a link or half an escape behind."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    if cut.rfind("&") > cut.rfind(";"):
        cut = cut[: cut.rfind("&")]
    return cut.rstrip() + "…"


def pack(lines: list[str], *, more: int, noun: str, head: str = "", where: str = "") -> str:
    """Lines under a section's limit; what does not fit (or was left out) is counted, not lost silently."""
    kept = [head] if head else []
    reserve = 60
    size = len(head)
    omitted = max(0, more)
    for index, line in enumerate(lines):
        if size + len(line) + 1 > MAX_SECTION_CHARS - reserve:
            omitted += len(lines) - index
            break
        kept.append(line)
        size += len(line) + 1
    if omitted:
        kept.append(f"…and {plural(omitted, 'more ' + noun)}{where}")
    return "\n".join(kept)


def chunks(lines: list[str], limit: int) -> list[str]:
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if chunks[-1] and size + len(line) + 1 > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    return ["\n".join(chunk) for chunk in chunks]
