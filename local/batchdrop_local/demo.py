"""`make demo`: the whole control plane on an embedded AWS, watched live.

It starts moto on a free port of 127.0.0.1, creates the stack from
`template.yaml`, runs the functions (LocalLambda), follows Batch (LocalBatch),
points the Slack webhooks at a local receiver, drops the example specs (and
one bad one) under `incoming/<team>/` as a user would, and shows runs, jobs
and Slack messages as they happen. It exits 0 when every run ends as the
scenario expects, 1 otherwise. With `--keep` it stays up and prints what the
`batchdrop` command line needs to use it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from batchdrop.spec.parse import parse_spec
from batchdrop.store.records import JobRecord, RunRecord
from batchdrop_local.batch_lifecycle import Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import SeparateEmbeddedAws
from batchdrop_local.stack_model import STACK_NAME

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "demo" / "scenario.yaml"
DROPS = [*sorted((ROOT / "examples" / "specs").iterdir()), ROOT / "examples" / "demo" / "typo-in-gpus.yaml"]
STATUS_STYLE = {
    "submitting": "dim",
    "submitted": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "rejected": "red",
    "cancelled": "magenta",
    "SUBMITTED": "dim",
    "PENDING": "dim",
    "RUNNABLE": "cyan",
    "STARTING": "yellow",
    "RUNNING": "yellow",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "LOST": "red",
}
FINISHED = {"succeeded", "failed", "rejected", "cancelled"}


@dataclass
class Drop:
    file: Path
    team: str
    key: str
    expected: str


@dataclass
class Snapshot:
    runs: dict[str, RunRecord] = field(default_factory=dict)
    """By drop file name."""
    jobs: dict[str, list[JobRecord]] = field(default_factory=dict)

    def settled(self, drops: list[Drop]) -> bool:
        return all(drop.file.name in self.runs and self.runs[drop.file.name].status in FINISHED for drop in drops)

    def as_expected(self, drops: list[Drop]) -> bool:
        return all(
            self.runs.get(drop.file.name) and self.runs[drop.file.name].status == drop.expected for drop in drops
        )


def plan_drops(scenario: Scenario) -> list[Drop]:
    drops = []
    for file in DROPS:
        team, name = "vision", file.name
        with contextlib.suppress(Exception):  # a bad spec still goes to its team's folder
            parsed = parse_spec(file.read_bytes(), file.name)
            team, name = parsed.spec.team or team, parsed.spec.name
        if file.name.startswith("typo"):
            team = "vision"
        expected = scenario.expected.get(name) or scenario.expected.get(file.name, "succeeded")
        drops.append(Drop(file=file, team=team, key=f"incoming/{team}/{file.name}", expected=expected))
    return drops


class Demo:
    def __init__(self, *, speed: float, scenario: Scenario) -> None:
        self.speed = speed
        self.drops = plan_drops(scenario)
        self.aws = SeparateEmbeddedAws()  # moto in its own process: the view and the functions keep this one
        self.plane = ControlPlane(self.aws, scenario=scenario, speed=speed)
        self.slack = self.plane.slack
        self.started = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[Demo]:
        self.aws.start()
        try:
            with self.plane.running():
                self.table = self.plane.table
                self.runtime = self.plane.runtime
                self.batch = self.plane.batch
                self.started = time.monotonic()
                yield self
        finally:
            self.aws.stop()

    def drop_all(self) -> None:
        """As a user would: `aws s3 cp spec.yaml s3://<bucket>/incoming/<team>/`."""
        s3 = self.aws.client("s3")
        for drop in self.drops:
            s3.put_object(Bucket=self.plane.bucket, Key=drop.key, Body=drop.file.read_bytes())

    def snapshot(self) -> Snapshot:
        found = Snapshot()
        keys = {drop.key: drop.file.name for drop in self.drops}
        for team in {drop.team for drop in self.drops}:
            runs, _ = self.table.list_runs(team, limit=100)
            for run in runs:
                if run.source.key in keys:
                    found.runs[keys[run.source.key]] = run
        all_jobs = self.table.get_jobs(job.job_id for run in found.runs.values() for job in run.jobs)
        for name, run in found.runs.items():
            found.jobs[name] = [all_jobs[job.job_id] for job in run.jobs if job.job_id in all_jobs]
        return found

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def render(demo: Demo, snapshot: Snapshot) -> Group:
    runs = Table(title="Runs (one per dropped file)", expand=True, title_justify="left")
    for column in ("file", "team", "run", "expected", "status", "jobs / reason"):
        runs.add_column(column)
    for drop in demo.drops:
        run = snapshot.runs.get(drop.file.name)
        status = run.status if run else "—"
        detail = ""
        if run and run.status == "rejected" and run.problems:
            detail = run.problems[0].render()
        elif run:
            detail = ", ".join(f"{job.step}→{job.queue}" for job in run.jobs)
            if run.reason:
                detail += f"  ({run.reason})"
        runs.add_row(
            drop.file.name,
            drop.team,
            run.run_id[:8] if run else "",
            drop.expected,
            Text(status, style=STATUS_STYLE.get(status, "")),
            detail,
        )
    jobs = Table(title="Jobs", expand=True, title_justify="left")
    for column in ("spec", "step", "queue", "status", "attempts", "children", "failure"):
        jobs.add_column(column)
    for name, records in snapshot.jobs.items():
        for record in records:
            queue = Text(record.queue, style="magenta" if record.hardware == "gpu" else "blue")
            children = ", ".join(
                f"{count} {status.lower()}" for status, count in sorted(record.children.items()) if count
            )
            jobs.add_row(
                record.spec_name or name,
                record.step,
                queue,
                Text(record.status, style=STATUS_STYLE.get(record.status, "")),
                "—" if record.array_size else str(record.attempts),  # its children make the attempts
                children,
                record.failure or "",
            )
    # The message's fallback text ends with its log links: long, and in the messages' blocks anyway.
    messages = [f"[{item.channel}] {item.text.split(' Logs: ')[0]}" for item in demo.slack.received[-8:]]
    slack = Panel(
        Text("\n".join(messages) or "(nothing yet)"),
        title=f"Slack ({len(demo.slack.received)} messages)",
        title_align="left",
    )
    invoked = ", ".join(f"{name.removesuffix('Function')} {count}" for name, count in demo.runtime.invocations.items())
    header = Text(
        f"batchdrop demo — {demo.elapsed():5.1f} s — Batch events sent: {demo.batch.events_sent} — "
        f"invocations: {invoked}",
        style="bold",
    )
    return Group(header, runs, jobs, slack)


@contextlib.contextmanager
def _quiet_process_output(log: Path) -> Iterator[TextIO]:
    """The functions log JSON and EMF to standard output, as in Lambda: send that to a file, and
    give the live view the terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    saved_err = os.dup(2)
    with log.open("w") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(terminal.fileno(), 1)
            os.dup2(saved_err, 2)


def run_demo(
    *,
    speed: float = 1.0,
    scenario: Scenario | None = None,
    timeout: float = 60.0,
    keep: bool = False,
    console: Console | None = None,
    inspect: Callable[[Demo], None] | None = None,
) -> tuple[bool, Snapshot, Demo]:
    """Run the demo; `inspect` is called with it at the end, while the stack is still up (for tests)."""
    demo = Demo(speed=speed, scenario=scenario or Scenario.load(SCENARIO))
    console = console or Console()
    with demo.running():
        demo.drop_all()
        snapshot = Snapshot()
        with Live(render(demo, snapshot), console=console, refresh_per_second=4, transient=False) as live:
            while demo.elapsed() < timeout:
                snapshot = demo.snapshot()
                live.update(render(demo, snapshot))
                if snapshot.settled(demo.drops):
                    time.sleep(1.0 / speed)  # the last notifications land
                    live.update(render(demo, demo.snapshot()))
                    break
                time.sleep(0.25)
        snapshot = demo.snapshot()
        ok = snapshot.as_expected(demo.drops)
        summary(console, demo, snapshot, ok)
        if inspect is not None:
            inspect(demo)
        if keep:
            hold(console, demo)
    return ok, snapshot, demo


def summary(console: Console, demo: Demo, snapshot: Snapshot, ok: bool) -> None:
    console.print()
    table = Table(title="Summary", title_justify="left")
    for column in ("file", "expected", "ended", ""):
        table.add_column(column)
    for drop in demo.drops:
        run = snapshot.runs.get(drop.file.name)
        ended = run.status if run else "never seen"
        table.add_row(drop.file.name, drop.expected, ended, "✓" if ended == drop.expected else "✗")
    console.print(table)
    verdict = "every run ended as expected" if ok else "some runs did not end as expected"
    console.print(
        Text(
            f"{'✓' if ok else '✗'} {verdict} in {demo.elapsed():.1f} s; {len(demo.slack.received)} Slack messages",
            style="green" if ok else "red",
        )
    )


def hold(console: Console, demo: Demo) -> None:
    console.print(
        f"\nThe stack stays up (Ctrl-C to stop). In another shell:\n"
        f"  export AWS_ENDPOINT_URL={demo.aws.endpoint} AWS_DEFAULT_REGION=us-east-1 "
        f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n"
        f"  .venv/bin/batchdrop --stack {STACK_NAME} list --team vision\n"
        f"  .venv/bin/batchdrop --stack {STACK_NAME} submit examples/specs/gpu-finetune.yaml --follow"
    )
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchdrop_local.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=1.0, help="faster (2) or slower (0.5) than the scenario")
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every run to end")
    parser.add_argument("--keep", action="store_true", help="stay up afterwards for the command line")
    parser.add_argument(
        "--log", type=Path, default=ROOT / ".batchdrop" / "demo.log", help="where the functions' own output goes"
    )
    args = parser.parse_args(argv)
    with _quiet_process_output(args.log) as terminal:
        console = Console(file=terminal, force_terminal=terminal.isatty())
        ok, _, _ = run_demo(
            speed=args.speed,
            scenario=Scenario.load(args.scenario),
            timeout=args.timeout,
            keep=args.keep,
            console=console,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
