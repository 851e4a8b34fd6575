"""`batchdrop-local slack`: the demo's Slack messages, as kept in `.batchdrop/slack.jsonl`, printed
readably (oldest first), as JSON, or followed as a running demo adds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batchdrop_local.main import main
from batchdrop_local.slack_journal import follow_lines, print_messages, readable


def entry(text: str, channel: str = "vision", time: str = "2026-11-30T01:32:34.123+00:00") -> dict[str, object]:
    return {"time": time, "channel": channel, "text": text, "blocks": [{"type": "section"}]}


def write(journal: Path, *entries: dict[str, object]) -> None:
    journal.write_text("".join(json.dumps(item) + "\n" for item in entries), encoding="utf-8")


def test_a_message_reads_as_its_time_channel_and_text() -> None:
    message = entry("❌ Failed: nightly-report — exit code 3. Logs: <https://example.invalid|log>", "forecasting")
    assert readable(message) == (
        "01:32:34  #forecasting  ❌ Failed: nightly-report — exit code 3. Logs: <https://example.invalid|log>"
    )
    assert readable(message, links=False) == "01:32:34  #forecasting  ❌ Failed: nightly-report — exit code 3."
    assert readable(entry("first\nsecond")) == "01:32:34  #vision  first\n            second"


def test_slack_prints_every_message_oldest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "slack.jsonl"
    write(journal, *(entry(f"message {index}") for index in range(20)))
    assert main(["slack", "--file", str(journal)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"01:32:34  #vision  message {index}" for index in range(20)]


def test_slack_json_prints_each_kept_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "slack.jsonl"
    kept = [entry("one"), entry("two", "forecasting")]
    write(journal, *kept)
    assert main(["slack", "--json", "--file", str(journal)]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == kept


def test_no_journal_yet_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slack", "--file", str(tmp_path / "slack.jsonl")]) == 1
    captured = capsys.readouterr()
    assert "no Slack messages yet" in captured.err
    assert "make demo" in captured.err
    assert "Traceback" not in captured.err


def test_an_unreadable_line_is_named_and_the_others_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "slack.jsonl"
    journal.write_text(
        json.dumps(entry("one"))
        + "\nnot json\n"
        + json.dumps({"x": 1})
        + "\n"
        + json.dumps(entry("two"))
        + "\n"
        + json.dumps(entry("three"))[:30]  # the last line still being written: not yet a message
    )
    assert main(["slack", "--file", str(journal)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["01:32:34  #vision  one", "01:32:34  #vision  two"]
    assert "line 2 is not a Slack message" in captured.err
    assert "line 3 is not a Slack message" in captured.err


def test_unknown_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["slack", "--nope"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_follow_prints_new_messages_as_they_come_and_starts_over_with_a_new_demo(tmp_path: Path) -> None:
    journal = tmp_path / "slack.jsonl"
    one, two = json.dumps(entry("one")), json.dumps(entry("two"))
    rounds: list[str | None] = [
        None,  # no journal yet: it waits
        one + "\n" + two[:20],  # the second line half written
        one + "\n" + two + "\n",
        json.dumps(entry("new demo")) + "\n",  # a new demo began the journal afresh
    ]

    def keep_going() -> bool:
        if not rounds:
            return False
        content = rounds.pop(0)
        if content is not None:
            journal.write_text(content)
        return True

    followed = list(follow_lines(journal, poll=0, keep_going=keep_going))
    assert [json.loads(line)["text"] for _, line in followed] == ["one", "two", "new demo"]


def test_a_message_half_written_in_the_middle_of_a_character_waits_for_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "slack.jsonl"
    one = (json.dumps(entry("✅ one"), ensure_ascii=False) + "\n").encode()
    two = (json.dumps(entry("❌ two — 🚀"), ensure_ascii=False) + "\n").encode()
    cut = two.index("🚀".encode()) + 2  # two bytes of the rocket's four
    journal.write_bytes(one + two[:cut])
    assert main(["slack", "--file", str(journal)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["01:32:34  #vision  ✅ one"]
    assert captured.err == ""

    rounds = [one + two[:cut], one + two]

    def keep_going() -> bool:
        if not rounds:
            return False
        journal.write_bytes(rounds.pop(0))
        return True

    followed = list(follow_lines(journal, poll=0, keep_going=keep_going))
    assert [json.loads(line)["text"] for _, line in followed] == ["✅ one", "❌ two — 🚀"]


def test_printing_counts_the_messages(tmp_path: Path) -> None:
    out, err = (tmp_path / "out").open("w"), (tmp_path / "err").open("w")
    with out, err:
        printed = print_messages(iter([(1, json.dumps(entry("a"))), (2, "{}")]), out, err, raw=False)
    assert printed == 1
