"""Reading the demo's Slack messages back: `.batchdrop/slack.jsonl`, one JSON object a line
(time, channel, text, blocks), as `SlackReceiver` appends them. `batchdrop-local slack` prints them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

SLACK_JOURNAL = Path(__file__).resolve().parents[2] / ".batchdrop" / "slack.jsonl"
LOGS_LINK = " Logs: "
"""A message's fallback text ends with its log links: long, and in the message's blocks anyway."""


class UnreadableLine(ValueError):
    def __init__(self, number: int, line: str) -> None:
        super().__init__(f"line {number} is not a Slack message: {line[:80]!r}")


def parse_line(line: str, number: int) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UnreadableLine(number, line) from exc
    if not isinstance(entry, dict) or not {"channel", "text"} <= entry.keys():
        raise UnreadableLine(number, line)
    return entry


def readable(entry: dict[str, Any], *, links: bool = True) -> str:
    """One message as text: `01:32:34  #vision  ❌ …`, a long text's further lines indented."""
    clock = str(entry.get("time", ""))[11:19]
    text = str(entry["text"])
    if not links:
        text = text.split(LOGS_LINK, maxsplit=1)[0]
    first, *rest = text.splitlines() or [""]
    lines = [f"{clock}  #{entry['channel']}  {first}", *(f"{'':>10}  {line}" for line in rest)]
    return "\n".join(lines)


def read_lines(journal: Path) -> Iterator[tuple[int, str]]:
    """The journal's complete lines, numbered from 1 (a last line without its newline is still
    being written, perhaps in the middle of a character: only complete lines are decoded)."""
    with journal.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if line.strip() and line.endswith(b"\n"):
                yield number, _decoded(line)


def follow_lines(
    journal: Path, *, poll: float = 0.5, keep_going: Callable[[], bool] = lambda: True
) -> Iterator[tuple[int, str]]:
    """Every line, then each new one as it is appended; from the top again when a new demo starts
    the journal afresh. Waits for a journal that does not exist yet. Sizes and positions in bytes."""
    position, number = 0, 0
    pending = b""
    while keep_going():
        if journal.exists():
            size = journal.stat().st_size
            if size < position:  # a new demo began a new journal
                position, number, pending = 0, 0, b""
            with journal.open("rb") as file:
                file.seek(position)
                pending += file.read()
                position = file.tell()
            *complete, pending = pending.split(b"\n")  # a line still being written waits
            for line in complete:
                number += 1
                if line.strip():
                    yield number, _decoded(line)
        time.sleep(poll)


def _decoded(line: bytes) -> str:
    """A complete line as text; bytes that are not UTF-8 (a damaged journal) make it unreadable, not fatal."""
    return line.decode("utf-8", errors="replace")


def print_messages(lines: Iterator[tuple[int, str]], out: TextIO, err: TextIO, *, raw: bool) -> int:
    """Print each line (as it is with `raw`, else readable); unreadable lines are named on `err`.
    Returns how many messages were printed."""
    printed = 0
    for number, line in lines:
        try:
            entry = parse_line(line, number)
        except UnreadableLine as exc:
            print(f"batchdrop-local slack: skipped {exc}", file=err)
            continue
        print(json.dumps(entry, ensure_ascii=False) if raw else readable(entry), file=out, flush=True)
        printed += 1
    return printed
