"""`make demo` on a terminal: the live view shows the demo and nothing the functions print; that
(their JSON logs, EMF metrics, warnings) is in `.batchdrop/demo.log`, each line labelled with the
function that wrote it; every Slack message is in `.batchdrop/slack.jsonl`, which
`batchdrop-local slack` prints; with `--keep`, new messages show as they come, until Ctrl-C. A rerun
the scenario names shows as its own row, with the steps it submitted."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from batchdrop_local.main import main

from batchdrop_cli.main import main as batchdrop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# a rejected spec (submit, publish, notify) and a failing job (Batch, track too), then that job's
# run rerun (`batchdrop rerun`), where it passes: a small demo
SPECS = ("typo-in-gpus.yaml", "cpu-report.yaml")
SCENARIO = """\
fates:
  - {spec: nightly-report, step: main, outcome: fail, exit_code: 3, first_job_only: true}
expected: {nightly-report: failed, typo-in-gpus.yaml: rejected}
reruns:
  - {spec: nightly-report, expected: succeeded, reused: [], submitted: [main]}
seconds: {queued: 0.3, starting: 0.3, running: 1.0, child: 1.0}
"""
NO_END = 300.0
"""Seconds after which the demo is taken to hang: a bound on the test, not a measurement."""


@dataclass(frozen=True)
class DemoRun:
    code: int
    screen: str
    log: str
    journal: Path
    reports: Path


class Terminal:
    """A command run with a pseudo-terminal as its standard input, output and error, as `make demo`
    on a terminal; `interrupt()` is Ctrl-C (SIGINT to its process group, as the terminal sends it)."""

    def __init__(self, arguments: list[str]) -> None:
        self._controller, terminal = os.openpty()
        self.process = subprocess.Popen(
            arguments,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            cwd=ROOT,
            env={**os.environ, "TERM": "xterm"},
            start_new_session=True,
        )
        os.close(terminal)
        self._shown = bytearray()
        self._open = True

    @property
    def screen(self) -> str:
        """What it showed, without the terminal's colours and cursor moves."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", self._shown.decode("utf-8", "replace"))

    def read_until(self, pattern: str | None = None) -> bool:
        """Read what it shows until `pattern` is on the screen (True) or the terminal closes."""
        deadline = time.monotonic() + NO_END
        while self._open and time.monotonic() < deadline:
            if pattern is not None and re.search(pattern, self.screen):
                return True
            readable, _, _ = select.select([self._controller], [], [], 1.0)
            if not readable:
                continue
            try:
                chunk = os.read(self._controller, 65536)
            except OSError:  # the terminal closed: every process that had it ended
                chunk = b""
            self._shown += chunk
            self._open = bool(chunk)
        return pattern is not None and re.search(pattern, self.screen) is not None

    def interrupt(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self) -> int:
        """Its exit code, once it has ended and shown everything."""
        self.read_until()
        os.close(self._controller)
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=30)


def demo(*arguments: str) -> Terminal:
    return Terminal([sys.executable, "-m", "batchdrop_local.demo", *arguments])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    where = tmp_path_factory.mktemp("demo")
    only = [argument for spec in SPECS for argument in ("--only", spec)]
    log, journal, scenario = where / "demo.log", where / "slack.jsonl", where / "scenario.yaml"
    scenario.write_text(SCENARIO)
    reports = where / "reports"
    terminal = demo(
        *only,
        "--scenario",
        str(scenario),
        "--log",
        str(log),
        "--slack-journal",
        str(journal),
        "--reports",
        str(reports),
    )
    code = terminal.wait()
    return DemoRun(code=code, screen=terminal.screen, log=log.read_text(), journal=journal, reports=reports)


def test_the_live_view_shows_the_demo_and_none_of_the_functions_output(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, demo_run.screen
    assert "every run ended as expected" in demo_run.screen
    for spec in SPECS:
        assert spec in demo_run.screen
    summary = demo_run.screen.rsplit("Summary", 1)[-1]  # its rows are wrapped on 80 columns
    rerun = r"cpu-report\.yaml\s+│ (succeeded; submitted\s+│ ){2}✓ │\s+│ \(rerun\)\s+│ main\s+│ main\s+│"
    assert re.search(rerun, summary), summary
    assert '"_aws"' not in demo_run.screen, "no EMF metric line"
    assert '"level"' not in demo_run.screen, "no JSON log line"
    assert not re.search(r"\.py:\d+: \w*Warning", demo_run.screen), "no Python warning"
    assert "aws_lambda_powertools" not in demo_run.screen
    assert "Traceback" not in demo_run.screen

    metrics = [line for line in demo_run.log.splitlines() if '"_aws"' in line]
    assert metrics, "the functions' EMF metrics are in the log"
    assert any('"level"' in line for line in demo_run.log.splitlines()), "and their logs"


def test_the_demo_ends_with_each_runs_report_page(demo_run: DemoRun) -> None:
    """One page per run: the report function's for a run that ended (the failed run and its rerun), the one
    `batchdrop report` builds for the rejected file; each a whole HTML page that loads nothing."""
    pages = sorted(demo_run.reports.glob("*.html"))
    names = sorted(page.name.rsplit(".", 2)[0] for page in pages)  # <drop>.<run id>.html
    assert names == ["cpu-report.yaml", "cpu-report.yaml-rerun", "typo-in-gpus.yaml"]
    shown = demo_run.screen.rsplit("Reports", 1)[-1]
    assert shown.count("by the report function") == 2
    assert shown.count("by batchdrop report") == 1
    for page in pages:
        text = page.read_text()
        run_id = page.name.split(".")[-2]
        assert text.startswith("<!DOCTYPE html>")
        assert run_id in text
        assert "<script" not in text


def test_each_line_of_the_log_names_the_function_that_wrote_it(demo_run: DemoRun) -> None:
    logged = [json.loads(line) for line in demo_run.log.splitlines() if line.startswith('{"level"')]
    names = {line["function_name"] for line in logged}
    assert {"SubmitFunction", "NotifyFunction"} <= names
    for line in logged:
        assert line["function_arn"].endswith(f":function:{line['function_name']}")
        if line["message"] == "drop handled":  # functions/submit/app.py's own line
            assert line["function_name"] == "SubmitFunction", line
    handled = [line for line in logged if line["message"] == "drop handled"]
    assert len(handled) == len(SPECS) + 1, "and the rerun's request"


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


def test_with_keep_new_slack_messages_show_as_they_come_and_ctrl_c_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "slack.jsonl"
    terminal = demo(
        "--only", "typo-in-gpus.yaml", "--keep", "--log", str(tmp_path / "demo.log"), "--slack-journal", str(journal)
    )
    try:
        assert terminal.read_until(r"appear here too:"), terminal.screen
        endpoint = re.search(r"AWS_ENDPOINT_URL=(http://127\.0\.0\.1:\d+)", terminal.screen)
        assert endpoint, terminal.screen
        assert "batchdrop-local slack --follow --file" in " ".join(terminal.screen.split()), "how to follow them"

        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # what the demo tells one to export
            monkeypatch.setenv(name, "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        spec = str(ROOT / "examples" / "specs" / "cpu-report.yaml")
        code = batchdrop(["--stack", "batchdrop-local", "--endpoint-url", endpoint[1], "submit", spec])
        assert code == 0
        assert terminal.read_until(r"appear here too:\s*\d\d:\d\d:\d\d  #forecasting  "), "the new run's message"
    finally:
        terminal.interrupt()
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.screen
    assert len(journal.read_text().splitlines()) >= 2
