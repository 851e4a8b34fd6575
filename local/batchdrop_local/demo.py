"""`make demo`: the whole control plane on an embedded AWS, watched live.

It starts moto on a free port of 127.0.0.1, creates the stack from
`template.yaml`, runs the functions (LocalLambda), follows Batch (LocalBatch),
points the Slack webhooks at a local receiver, drops the example specs (and
one bad one) under `incoming/<team>/` as a user would, and shows runs, jobs
and Slack messages as they happen. When a run the scenario names in `reruns`
has ended, it reruns it as `batchdrop rerun RUN_ID` does. It exits 0 when
every run (and rerun) ends as the scenario expects, 1 otherwise.
With `--keep` it stays up and prints what the `batchdrop` command line needs
to use it.

What the functions print goes to `.batchdrop/demo.log`, never to the live view;
every Slack message to `.batchdrop/slack.jsonl` (`batchdrop-local slack`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from batchdrop.notify.block_kit import plural
from batchdrop.store.records import RunRecord
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.reruns import rerun_request
from batchdrop_cli.uploads import Uploader
from batchdrop_local.batch_lifecycle import Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.demo_drops import (
    FINISHED,
    ROOT,
    Drop,
    Snapshot,
    UnknownDrop,
    check_only,
    plan_drops,
    plan_reruns,
)
from batchdrop_local.demo_reports import REPORTS, save_reports
from batchdrop_local.emulator import SeparateEmbeddedAws
from batchdrop_local.sandbox import FunctionError
from batchdrop_local.slack_journal import SLACK_JOURNAL, readable
from batchdrop_local.stack_model import STACK_NAME

DEMO_LOG = ROOT / ".batchdrop" / "demo.log"
SLACK_SHOWN = 8
"""The live view shows the newest messages; `batchdrop-local slack` every one."""
SCENARIO = ROOT / "examples" / "demo" / "scenario.yaml"
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


class Demo:
    def __init__(
        self, *, speed: float, scenario: Scenario, only: Sequence[str] = (), slack_journal: Path | None = None
    ) -> None:
        self.speed = speed
        self.first_wave = plan_drops(scenario, only)
        self.reruns = plan_reruns(scenario, self.first_wave)
        self.drops = [*self.first_wave, *self.reruns]
        self.aws = SeparateEmbeddedAws()  # moto in its own process: the view keeps this one
        self.plane = ControlPlane(self.aws, scenario=scenario, speed=speed, slack_journal=slack_journal)
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
                self.s3 = self.aws.client("s3")
                self.uploader = Uploader(s3=self.s3, bucket=self.plane.bucket)  # as `batchdrop` drops a file
                self.started = time.monotonic()
                yield self
        finally:
            self.aws.stop()

    def drop_all(self) -> None:
        """As a user would: `aws s3 cp spec.yaml s3://<bucket>/incoming/<team>/`."""
        s3 = self.aws.client("s3")
        for drop in self.first_wave:
            s3.put_object(Bucket=self.plane.bucket, Key=drop.key, Body=drop.file.read_bytes())

    def start_reruns(self, snapshot: Snapshot) -> None:
        """As a user would, once the run has ended: `batchdrop rerun RUN_ID`, by the code that command
        runs (the request it builds from the run's own spec file, dropped in the team's folder)."""
        for drop in self.reruns:
            original = snapshot.runs.get(drop.file.name)
            if drop.key or drop.problem or original is None or original.status not in FINISHED:
                continue
            try:
                request = rerun_request(self.table, self.s3, original.run_id, [], now=datetime.now(UTC))
                upload = self.uploader.upload(request.body, request.team, request.relative_path)
            except OperationFailed as exc:
                drop.problem = f"batchdrop rerun {original.run_id}: {exc}"
                continue
            drop.team, drop.key, drop.rerun_of = request.team, upload.source.key, original.run_id

    def snapshot(self) -> Snapshot:
        by_key: dict[str, RunRecord] = {}
        for team in {drop.team for drop in self.drops}:
            runs, _ = self.table.list_runs(team, limit=100)
            by_key |= {run.source.key: run for run in runs}
        found = Snapshot(runs={drop.name: by_key[drop.key] for drop in self.drops if drop.key in by_key})
        # a rerun's reused steps are the earlier run's jobs, shown with that run
        submitted = {name: [job for job in run.jobs if not job.reused_from] for name, run in found.runs.items()}
        all_jobs = self.table.get_jobs(job.job_id for jobs in submitted.values() for job in jobs)
        for name, jobs in submitted.items():
            found.jobs[name] = [all_jobs[job.job_id] for job in jobs if job.job_id in all_jobs]
        return found

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def render(demo: Demo, snapshot: Snapshot) -> Group:
    runs = Table(title="Runs (one per dropped file, and each rerun)", expand=True, title_justify="left")
    for column in ("file", "team", "run", "expected", "status", "jobs / reason"):
        runs.add_column(column)
    for drop in demo.drops:
        run = snapshot.runs.get(drop.name)
        status = run.status if run else "—"
        runs.add_row(
            drop.name,
            drop.team,
            run.run_id[:8] if run else "",
            drop.expected,
            Text(status, style=STATUS_STYLE.get(status, "")),
            _run_detail(drop, run),
        )
    jobs = Table(title="Jobs", expand=True, title_justify="left")
    for column in ("spec", "step", "queue", "status", "attempts", "children", "failure"):
        jobs.add_column(column)
    reruns = {drop.name for drop in demo.reruns}
    for name, records in snapshot.jobs.items():
        for record in records:
            queue = Text(record.queue, style="magenta" if record.hardware == "gpu" else "blue")
            children = ", ".join(
                f"{count} {status.lower()}" for status, count in sorted(record.children.items()) if count
            )
            jobs.add_row(
                f"{record.spec_name or name}{' (rerun)' if name in reruns else ''}",
                record.step,
                queue,
                Text(record.status, style=STATUS_STYLE.get(record.status, "")),
                "—" if record.array_size else str(record.attempts),  # its children make the attempts
                children,
                record.failure or "",
            )
    received = demo.slack.received
    messages = [readable(item.entry(), links=False) for item in received[-SLACK_SHOWN:]]
    shown = f", the newest {SLACK_SHOWN}; all: batchdrop-local slack" if len(received) > SLACK_SHOWN else ""
    slack = Panel(
        Text("\n".join(messages) or "(nothing yet)"),
        title=f"Slack ({len(received)} messages{shown})",
        title_align="left",
    )
    invoked = ", ".join(f"{name.removesuffix('Function')} {count}" for name, count in demo.runtime.invocations.items())
    header = Text(
        f"batchdrop demo — {demo.elapsed():5.1f} s — Batch events sent: {demo.batch.events_sent} — "
        f"invocations: {invoked}",
        style="bold",
    )
    return Group(header, runs, jobs, slack)


def _run_detail(drop: Drop, run: RunRecord | None) -> str:
    """Its jobs and where they went (a rerun's reused steps: whose job), or why it was refused."""
    if run is None:
        if drop.problem:
            return drop.problem
        return f"rerun once the run of {drop.file.name} has ended" if drop.rerun else ""
    if run.status == "rejected" and run.problems:
        return run.problems[0].render()
    detail = ", ".join(
        f"{job.step} reused (run {job.reused_from[:8]}, job {job.job_id[:8]})"
        if job.reused_from
        else f"{job.step}→{job.queue}"
        for job in run.jobs
    )
    return f"{detail}  ({run.reason})" if run.reason else detail


@contextlib.contextmanager
def quiet_process_output(log: Path) -> Iterator[TextIO]:
    """The functions log JSON and EMF to standard output, as in Lambda: this process's standard
    output and error (file descriptors 1 and 2, which the functions' processes inherit) become the
    log, and the live view gets the terminal, alone."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    sys.stdout.flush()
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    saved_err = os.dup(2)
    with log.open("a") as sink:  # appended: the processes writing to it never write over each other
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
    only: Sequence[str] = (),
    slack_journal: Path | None = None,
    reports: Path = REPORTS,
) -> tuple[bool, Snapshot, Demo]:
    """Run the demo; `inspect` is called with it at the end, while the stack is still up (for tests)."""
    demo = Demo(speed=speed, scenario=scenario or Scenario.load(SCENARIO), only=only, slack_journal=slack_journal)
    console = console or Console()
    with demo.running():
        demo.drop_all()
        snapshot = Snapshot()
        # Not Live's default of printing what is written to sys.stdout and sys.stderr above the view:
        # that is the functions' output (EMF, warnings), and it belongs in the log.
        with Live(
            render(demo, snapshot),
            console=console,
            refresh_per_second=4,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            while demo.elapsed() < timeout:
                snapshot = demo.snapshot()
                live.update(render(demo, snapshot))
                demo.start_reruns(snapshot)
                if snapshot.settled(demo.drops):
                    time.sleep(1.0 / speed)  # the last notifications land
                    live.update(render(demo, demo.snapshot()))
                    break
                time.sleep(0.25)
        snapshot = demo.snapshot()
        ok = snapshot.as_expected(demo.drops)
        summary(console, demo, snapshot, ok, reports)
        if inspect is not None:
            inspect(demo)
        if keep:
            hold(console, demo)
    return ok, snapshot, demo


def summary(console: Console, demo: Demo, snapshot: Snapshot, ok: bool, reports: Path = REPORTS) -> None:
    console.print()
    table = Table(title="Summary", title_justify="left")
    for column in ("file", "expected", "ended", ""):
        table.add_column(column)
    for drop in demo.drops:
        run = snapshot.runs.get(drop.name)
        table.add_row(drop.name, drop.expected_outcome(), drop.outcome(run), "✓" if drop.as_expected(run) else "✗")
    console.print(table)
    journal = demo.slack.journal
    console.print(
        f"\nSlack: {plural(len(demo.slack.received), 'message')}"
        + (f" (kept in {_shown(journal)}; `batchdrop-local slack` prints them)" if journal else "")
    )
    for message in demo.slack.received:
        console.print(Text(readable(message.entry(), links=False)))
    saved = save_reports(demo.aws.client("s3"), demo.plane.bucket, demo.table, snapshot.runs, reports)
    console.print("\nReports (one HTML page each, openable with no network; docs/report.md):")
    for report in saved:
        console.print(Text(f"  {_shown(report.path.resolve())}  ({report.name}; by {report.by})"))
    verdict = "every run ended as expected" if ok else "some runs did not end as expected"
    console.print(
        Text(
            f"{'✓' if ok else '✗'} {verdict} in {demo.elapsed():.1f} s; "
            f"{plural(len(demo.slack.received), 'Slack message')}",
            style="green" if ok else "red",
        )
    )


def hold(console: Console, demo: Demo) -> None:
    console.print(
        f"\nThe stack stays up (Ctrl-C to stop). In another shell:\n"
        f"  export AWS_ENDPOINT_URL={demo.aws.endpoint} AWS_DEFAULT_REGION=us-east-1 "
        f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n"
        f"  .venv/bin/batchdrop --stack {STACK_NAME} list --team vision\n"
        f"  .venv/bin/batchdrop --stack {STACK_NAME} submit examples/specs/gpu-finetune.yaml --follow\n"
        f"  .venv/bin/batchdrop-local slack --follow"
        + ("" if demo.slack.journal in {None, SLACK_JOURNAL} else f" --file {demo.slack.journal}")
        + "\nNew Slack messages appear here too:"
    )
    shown = len(demo.slack.received)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)
            for message in demo.slack.received[shown:]:
                console.print(Text(readable(message.entry(), links=False)))
                shown += 1


def _shown(path: Path) -> str:
    """A path as short as it can be said: from the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: Sequence[str] | None = None, prog: str = "python -m batchdrop_local.demo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=1.0, help="faster (2) or slower (0.5) than the scenario")
    parser.add_argument(
        "--scenario", type=Path, default=SCENARIO, help="what Batch does with each job (examples/demo/scenario.yaml)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every run to end")
    parser.add_argument("--keep", action="store_true", help="stay up afterwards for the command line")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FILE",
        help="drop only this spec (a file name of examples/specs, or typo-in-gpus.yaml); repeatable",
    )
    parser.add_argument("--log", type=Path, default=DEMO_LOG, help="where the functions' own output goes")
    parser.add_argument("--slack-journal", type=Path, default=SLACK_JOURNAL, help="where the Slack messages are kept")
    parser.add_argument("--reports", type=Path, default=REPORTS, help="where each run's report page is saved")
    args = parser.parse_args(argv)
    try:
        check_only(args.only)
    except UnknownDrop as exc:
        parser.error(str(exc))
    try:
        scenario = Scenario.load(args.scenario)
    except (OSError, ValueError) as exc:  # ScenarioError says what is wrong in the file
        parser.error(f"--scenario {args.scenario}: {exc}")
    with quiet_process_output(args.log) as terminal:
        console = Console(file=terminal, force_terminal=terminal.isatty())
        try:
            ok, _, _ = run_demo(
                speed=args.speed,
                scenario=scenario,
                timeout=args.timeout,
                keep=args.keep,
                console=console,
                only=args.only,
                slack_journal=args.slack_journal,
                reports=args.reports,
            )
        except FunctionError as exc:
            console.print(Text(f"✗ a function could not run: {exc}\n  its traceback is in {_shown(args.log)}", "red"))
            return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
