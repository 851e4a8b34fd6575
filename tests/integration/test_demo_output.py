"""`make demo` on a terminal: the live view shows the demo and nothing the functions print; that
(their JSON logs, EMF metrics, warnings) is in `.batchdrop/demo.log`, each line labelled with the
function that wrote it; every Slack message is in `.batchdrop/slack.jsonl`, which
`batchdrop-local slack` prints."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from batchdrop_local.main import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# a rejected spec (submit, publish, notify) and a failing job (Batch, track too): a small demo
SPECS = ("typo-in-gpus.yaml", "cpu-report.yaml")
NO_END = 300.0
"""Seconds after which the demo is taken to hang: a bound on the test, not a measurement."""


@dataclass(frozen=True)
class DemoRun:
    code: int
    screen: str
    log: str
    journal: Path


def run_on_a_terminal(arguments: list[str], *, cwd: Path) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its standard input, output and error: what it shows."""
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        arguments, stdin=terminal, stdout=terminal, stderr=terminal, cwd=cwd, env={**os.environ, "TERM": "xterm"}
    )
    os.close(terminal)
    shown = bytearray()
    deadline = time.monotonic() + NO_END
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([controller], [], [], 1.0)
            if not readable:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: every process that had it ended
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    return process.wait(timeout=30), shown.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    where = tmp_path_factory.mktemp("demo")
    only = [argument for spec in SPECS for argument in ("--only", spec)]
    log, journal = where / "demo.log", where / "slack.jsonl"
    code, screen = run_on_a_terminal(
        [sys.executable, "-m", "batchdrop_local.demo", *only, "--log", str(log), "--slack-journal", str(journal)],
        cwd=ROOT,
    )
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)  # the terminal's colours and cursor moves
    return DemoRun(code=code, screen=plain, log=log.read_text(), journal=journal)


def test_the_live_view_shows_the_demo_and_none_of_the_functions_output(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, demo_run.screen
    assert "every run ended as expected" in demo_run.screen
    for spec in SPECS:
        assert spec in demo_run.screen
    assert '"_aws"' not in demo_run.screen, "no EMF metric line"
    assert '"level"' not in demo_run.screen, "no JSON log line"
    assert not re.search(r"\.py:\d+: \w*Warning", demo_run.screen), "no Python warning"
    assert "aws_lambda_powertools" not in demo_run.screen
    assert "Traceback" not in demo_run.screen

    metrics = [line for line in demo_run.log.splitlines() if '"_aws"' in line]
    assert metrics, "the functions' EMF metrics are in the log"
    assert any('"level"' in line for line in demo_run.log.splitlines()), "and their logs"


def test_each_line_of_the_log_names_the_function_that_wrote_it(demo_run: DemoRun) -> None:
    logged = [json.loads(line) for line in demo_run.log.splitlines() if line.startswith('{"level"')]
    names = {line["function_name"] for line in logged}
    assert {"SubmitFunction", "NotifyFunction"} <= names
    for line in logged:
        assert line["function_arn"].endswith(f":function:{line['function_name']}")
        if line["message"] == "drop handled":  # functions/submit/app.py's own line
            assert line["function_name"] == "SubmitFunction", line
    handled = [line for line in logged if line["message"] == "drop handled"]
    assert len(handled) == len(SPECS)


def test_every_slack_message_is_kept_and_batchdrop_local_slack_prints_them(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = [json.loads(line) for line in demo_run.journal.read_text().splitlines()]
    assert len(kept) >= len(SPECS), "at least one message per run"
    assert {entry["channel"] for entry in kept} == {"vision", "forecasting"}
    assert all(entry["text"] and entry["time"] and isinstance(entry["blocks"], list) for entry in kept)
    assert any("typo-in-gpus.yaml" in entry["text"] for entry in kept)
    assert f"Slack: {len(kept)} message" in demo_run.screen, "the demo's end shows them all"

    assert main(["slack", "--file", str(demo_run.journal)]) == 0
    printed = capsys.readouterr().out
    places = [printed.find(f"#{entry['channel']}  {entry['text'].splitlines()[0]}") for entry in kept]
    assert -1 not in places, printed
    assert places == sorted(places), "oldest first, newest last"

    assert main(["slack", "--json", "--file", str(demo_run.journal)]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == kept
