"""The `batchdrop` commands that work against a deployed stack: submit, status, list, cancel, logs.

They find the stack's bucket and table in its CloudFormation outputs (`--stack`, default
`$BATCHDROP_STACK` or `batchdrop-dev`) and talk to AWS with the usual credentials, or to the
local stack with `--endpoint-url` (`make demo -- --keep` prints it). Exit codes: 0 ok (and, with
`--wait`, the run succeeded), 1 the spec was rejected, 2 usage or environment errors, 3 the run
failed or was cancelled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config

from batchdrop.errors import InvalidInput, Problem
from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway
from batchdrop.platform.config import parse_platform_config
from batchdrop.platform.source import config_name, read_config_bytes
from batchdrop.spec.documents import format_for, load_document
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import JobRecord, Receipt, Transition
from batchdrop_cli.operations import (
    OperationFailed,
    Operations,
    Progress,
    RunView,
    StackResources,
    Upload,
    parse_since,
    run_json,
)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_RUN_FAILED = 3
DEFAULT_STACK = "batchdrop-dev"
STACK_ENV_VAR = "BATCHDROP_STACK"
RECEIPT_TIMEOUT_SECONDS = 120.0
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
RUN_STATUSES = ("submitting", "submitted", "rejected", "running", "succeeded", "failed", "cancelled")


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where the stack is (submit, status, list, cancel, logs)")
    where.add_argument(
        "--stack",
        default=os.environ.get(STACK_ENV_VAR, DEFAULT_STACK),
        help=f"the CloudFormation stack to use (default: ${STACK_ENV_VAR}, then {DEFAULT_STACK})",
    )
    where.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    where.add_argument("--profile", help="AWS profile (default: your AWS configuration's)")
    where.add_argument("--endpoint-url", help="talk to this endpoint instead of AWS (the local stack's)")


def add_stack_commands(commands: Any) -> None:
    submit = commands.add_parser("submit", help="drop a spec into the stack's bucket and show its run")
    submit.add_argument("file", metavar="FILE")
    submit.add_argument("--team", help="the team to submit as: incoming/TEAM/ (default: the spec's `team`)")
    submit.add_argument("--as", dest="relative_path", metavar="PATH", help="the key below incoming/TEAM/")
    waiting = submit.add_mutually_exclusive_group()
    waiting.add_argument("--wait", action="store_true", help="wait until the run ends; its outcome is the exit code")
    waiting.add_argument("--follow", action="store_true", help="like --wait, printing every state change")
    submit.add_argument("--timeout", type=float, help="give up after this many seconds (default: none with --wait)")
    submit.add_argument("--json", action="store_true", help="print one JSON document")
    submit.set_defaults(run=_submit)

    status = commands.add_parser("status", help="a run, its jobs and their states")
    status.add_argument("run_id", metavar="RUN_ID")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(run=_status)

    listing = commands.add_parser("list", help="runs, newest first")
    listing.add_argument("--team", action="append", help="only this team's runs (repeatable; default: every team)")
    listing.add_argument("--status", choices=RUN_STATUSES, help="only runs in this state")
    listing.add_argument("--since", help="only runs received since: 30m, 12h, 7d, or a date such as 2026-11-20")
    listing.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(run=_list)

    cancel = commands.add_parser("cancel", help="cancel a run's queued jobs and terminate its running ones")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", help="why (recorded, and shown in Batch and Slack)")
    cancel.add_argument("--json", action="store_true", help="print one JSON document")
    cancel.set_defaults(run=_cancel)

    logs = commands.add_parser("logs", help="a run's CloudWatch log lines, step by step and attempt by attempt")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("--step", help="only this step")
    logs.add_argument("--attempt", type=int, help="only this attempt (1 is the first)")
    logs.set_defaults(run=_logs)


# ---------------------------------------------------------------------- wiring


class _Stack:
    """The clients for one command, made from the global options."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.session = boto3.Session(profile_name=args.profile, region_name=args.region)
        self.endpoint_url: str | None = args.endpoint_url
        self.resources = StackResources.from_stack(self.client("cloudformation"), args.stack)
        self.operations = Operations(
            table=RecordQueries(self.client("dynamodb"), self.resources.table),
            s3=self.client("s3"),
            batch=BatchGateway(self.client("batch", BATCH_CLIENT_CONFIG)),
            logs=self.client("logs"),
            bucket=self.resources.bucket,
        )

    def client(self, service: str, config: Config = CLIENT_CONFIG) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, config=config)  # type: ignore[call-overload]

    def teams(self) -> list[str]:
        """Every team of the stack's platform config (for `list` without --team)."""
        location = self.resources.config_location
        if not location:
            raise OperationFailed("the stack does not say where its platform config is: pass --team")
        raw = read_config_bytes(location, s3_client=self.client("s3"), ssm_client=self.client("ssm"))
        return sorted(parse_platform_config(raw, config_name(location)).teams)

    def caller(self) -> str:
        arn: str = self.client("sts").get_caller_identity()["Arn"]
        return arn


# ---------------------------------------------------------------------- submit


def _submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    team = args.team or _team_of(path)
    stack = _Stack(args)
    operations = stack.operations
    started = time.monotonic()
    upload = operations.upload(path, team, args.relative_path)
    display = _Display(sys.stderr, quiet=args.json)
    display.say(f"uploaded {path} to {upload.source.uri} (run {upload.run_id}); waiting for its receipt…")
    timeout = args.timeout if args.timeout is not None else RECEIPT_TIMEOUT_SECONDS
    receipt = operations.wait_for_receipt(upload, timeout=timeout)
    if not (args.wait or args.follow):
        if args.json:
            print_json(_receipt_json(receipt))
        else:
            _print_receipt(receipt, upload)
        return EXIT_INVALID if receipt.status == "rejected" else EXIT_OK
    if receipt.status == "rejected":
        if args.json:
            print_json({"receipt": _receipt_json(receipt), **operations.view(receipt.run_id).as_json()})
        else:
            _print_receipt(receipt, upload)
        return EXIT_INVALID
    if not args.json:
        _print_receipt(receipt, upload)
    deadline = None if args.timeout is None else started + args.timeout
    following = args.follow and not args.json
    final = _follow(operations, receipt.run_id, follow=following, display=display, deadline=deadline)
    if args.json:
        print_json({"receipt": _receipt_json(receipt), **final.as_json()})
    else:
        print()
        _print_view(final)
    return EXIT_OK if final.run.status == "succeeded" else EXIT_RUN_FAILED


def _team_of(path: Path) -> str:
    """The spec's `team:`, read even from a spec that is otherwise invalid (the stack says why)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OperationFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
    document_format = format_for(path.name)
    data: Any = None
    if document_format is not None:
        with contextlib.suppress(InvalidInput):
            data = load_document(raw, document_format).data
    team = data.get("team") if isinstance(data, dict) else None
    if not isinstance(team, str) or not team:
        raise OperationFailed(f"{path} does not say its team: pass --team")
    return team


def _follow(operations: Operations, run_id: str, *, follow: bool, display: _Display, deadline: float | None) -> RunView:
    last: Progress | None = None
    for progress in operations.watch(run_id):
        last = progress
        if follow:
            display.clear()
            for job, transition in progress.transitions:
                print(_transition_line(job, transition), flush=True)
            for job in progress.children_changed:
                print(f"{'':8}  {job.step:<16} children: {_counts(job.children)}", flush=True)
        display.progress(progress.view)
        if deadline is not None and time.monotonic() > deadline and not progress.view.ended:
            display.clear()
            raise OperationFailed(f"run {run_id} is still {progress.view.run.status}; stopped waiting (--timeout)")
    display.clear()
    assert last is not None
    return last.view


def _transition_line(job: JobRecord, transition: Transition) -> str:
    attempt = f" attempt {transition.attempt}" if transition.attempt > 1 else ""
    reason = f"  {transition.reason}" if transition.reason else ""
    return f"{_clock(transition.at)}  {job.step:<16} {transition.status:<10}{attempt}  ({job.queue}){reason}"


class _Display:
    """A one-line progress display on a terminal's standard error; plain lines elsewhere."""

    def __init__(self, stream: TextIO, *, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.live = stream.isatty() and not quiet
        self.started = time.monotonic()
        self.shown = False

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def progress(self, view: RunView) -> None:
        if not self.live or view.ended:
            return
        states = _counts(Counter(job.status for job in view.jobs))
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r\033[K{view.run.status}: {states}  ({elapsed:.0f} s; Ctrl-C stops waiting)")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


# ---------------------------------------------------------------------- status and list


def _status(args: argparse.Namespace) -> int:
    view = _Stack(args).operations.view(args.run_id, with_history=True)
    if args.json:
        print_json(view.as_json())
    else:
        _print_view(view)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise OperationFailed("--limit must be at least 1")
    stack = _Stack(args)
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    teams = args.team or stack.teams()
    runs, more = stack.operations.runs(teams, status=args.status, since=since, limit=args.limit)
    if args.json:
        print_json({"runs": [run_json(run) for run in runs], "more": more})
        return EXIT_OK
    if not runs:
        print("no runs" + (f" in state {args.status}" if args.status else "") + f" for {', '.join(teams)}")
        return EXIT_OK
    rows = [("RECEIVED (UTC)", "RUN", "TEAM", "SPEC", "STATUS", "JOBS")]
    rows += [
        (
            run.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            run.run_id,
            run.team,
            run.spec_name or Path(run.source.key).name,
            run.status,
            str(len(run.jobs)),
        )
        for run in runs
    ]
    _print_table(rows)
    if more:
        print(f"… more runs: pass --limit {args.limit * 2}, or narrow with --since / --status")
    return EXIT_OK


def _print_view(view: RunView) -> None:
    run = view.run
    title = f"run {run.run_id}: {run.spec_name or Path(run.source.key).name} for team {run.team}"
    print(title + (f" ({run.environment})" if run.environment else "") + f" — {run.status.upper()}")
    print(f"  source    {run.source.uri}")
    moments = [("received", run.received_at), ("submitted", run.submitted_at), ("finished", run.finished_at)]
    print("  " + "  ".join(f"{name} {_when(moment)}" for name, moment in moments if moment))
    if run.reason:
        print(f"  reason    {run.reason}")
    if run.cancelled_by:
        why = f": {run.cancel_reason}" if run.cancel_reason else ""
        print(f"  cancelled by {run.cancelled_by} at {_when(run.cancel_requested_at)}{why}")
    if run.usage:
        usage = run.usage
        print(
            f"  used      {usage.vcpu_hours:.2f} vCPU-h, {usage.gpu_hours:.2f} GPU-h, "
            f"{usage.memory_gib_hours:.2f} GiB-h of memory"
        )
    for warning in run.warnings:
        print(f"  warning   {warning}")
    if run.status == "rejected":
        _print_problems(run.problems, run.problem_count)
        return
    if not view.jobs:
        return
    print()
    rows = [("STEP", "QUEUE", "STATUS", "ATTEMPTS", "EXIT", "JOB ID")]
    rows += [
        (
            job.step,
            job.queue,
            job.status,
            "—" if job.array_size else f"{job.attempts}/{job.max_attempts}",  # its children make the attempts
            "" if job.exit_code is None else str(job.exit_code),
            job.job_id,
        )
        for job in view.jobs
    ]
    _print_table(rows, indent="  ")
    for job in view.jobs:
        notes = []
        if job.children:
            notes.append(f"children: {_counts(job.children)}")
        if job.failure:
            notes.append(f"failure: {job.failure}")
        notes += [f"log (attempt {link.attempt}): {link.url}" for link in job.log_links]
        if notes:
            print(f"  {job.step}:")
            for note in notes:
                print(f"    {note}")


def _print_receipt(receipt: Receipt, upload: Upload) -> None:
    if receipt.status == "rejected":
        print(f"✗ run {receipt.run_id}: {upload.source.uri} was rejected")
        _print_problems(receipt.problems, receipt.problem_count)
        return
    print(f"✓ run {receipt.run_id}: {receipt.spec_name} submitted for team {receipt.team}, {len(receipt.jobs)} job(s)")
    for job in receipt.jobs:
        array = f" (array of {job.array_size:,})" if job.array_size else ""
        print(f"    {job.step:<16} {job.hardware} queue {job.queue:<20} job {job.job_id}{array}")
    for warning in receipt.warnings:
        print(f"    warning: {warning}")
    print(f"  follow it: batchdrop status {receipt.run_id}")


def _print_problems(problems: list[Problem], count: int) -> None:
    for problem in problems:
        print(f"    {problem.render()}")
    if count > len(problems):
        print(f"    … and {count - len(problems)} more (the receipt lists every one)")


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    return receipt.model_dump(mode="json", by_alias=True)


# ---------------------------------------------------------------------- cancel and logs


def _cancel(args: argparse.Namespace) -> int:
    stack = _Stack(args)
    requests = stack.operations.cancel(args.run_id, who=stack.caller(), reason=args.reason)
    if args.json:
        print_json({"run_id": args.run_id, "jobs": [vars(request) for request in requests]})
    else:
        for request in requests:
            detail = f": {request.detail}" if request.detail else ""
            print(f"  {request.step:<16} {request.status:<10} {request.action}{detail}")
        print(f"run {args.run_id}: cancel requested; `batchdrop status {args.run_id}` shows when its jobs have stopped")
    return EXIT_OK if all(request.action != "failed" for request in requests) else 2


def _logs(args: argparse.Namespace) -> int:
    sections = _Stack(args).operations.log_sections(args.run_id, step=args.step, attempt=args.attempt)
    for section in sections:
        where = f" · {section.log_stream}" if section.log_stream else ""
        print(f"==> {section.step} · attempt {section.attempt}{where} <==")
        if section.missing:
            print(f"(no log lines: {section.missing})")
        for moment, line in section.lines:
            print(f"{_when(moment)}  {line}")
        if section.url and (section.missing or not section.lines):
            print(f"console: {section.url}")
        print()
    return EXIT_OK


# ---------------------------------------------------------------------- printing


def _counts(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{count:,} {status}" for status, count in sorted(counts.items()) if count)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def _print_table(rows: Sequence[tuple[str, ...]], indent: str = "") -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
