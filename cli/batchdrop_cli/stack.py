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
from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.errors import BatchdropError, InvalidInput, Problem
from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway
from batchdrop.gateways.bucket import INCOMING, run_report_key
from batchdrop.platform.config import parse_platform_config
from batchdrop.platform.costs import money_words, run_cost
from batchdrop.platform.source import config_name, read_config_bytes
from batchdrop.spec.documents import format_for, load_document
from batchdrop.store.node_ends import node_summary
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import TERMINAL, AttemptEnd, JobRecord, Receipt, Transition
from batchdrop.track.failures import retried_because
from batchdrop_cli.cancelling import RunAlreadyEnded, RunCanceller
from batchdrop_cli.drops import TEAM_PLACEHOLDER, drop_problems, no_receipt_advice
from batchdrop_cli.following import Progress, RunFollower
from batchdrop_cli.log_streams import LogStreams
from batchdrop_cli.operations import OperationFailed, StackResources, parse_since
from batchdrop_cli.run_logs import LogSection, RunLogs
from batchdrop_cli.run_views import RunReader, RunView, run_json, shown_status
from batchdrop_cli.uploads import ReceiptTimedOut, Upload, Uploader

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_RUN_FAILED = 3
DEFAULT_STACK = "batchdrop-dev"
STACK_ENV_VAR = "BATCHDROP_STACK"
RECEIPT_TIMEOUT_SECONDS = 120.0
LOG_POLL_SECONDS = 1.0
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
ENDED = TERMINAL | {"CANCELLED"}
RUN_STATUSES = ("submitting", "submitted", "rejected", "running", "succeeded", "failed", "cancelled")


def add_stack_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """The global options: before the command (with their defaults), and after it too (`after_command`:
    given there, they win; not given, the ones before the command stand)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if after_command else value

    where = parser.add_argument_group("where the stack is (submit, status, list, cancel, logs)")
    where.add_argument(
        "--stack",
        default=default(os.environ.get(STACK_ENV_VAR, DEFAULT_STACK)),
        help=f"the CloudFormation stack to use (default: ${STACK_ENV_VAR}, then {DEFAULT_STACK})",
    )
    where.add_argument("--region", default=default(None), help="AWS region (default: your AWS configuration's)")
    where.add_argument("--profile", default=default(None), help="AWS profile (default: your AWS configuration's)")
    where.add_argument(
        "--endpoint-url", default=default(None), help="talk to this endpoint instead of AWS (the local stack's)"
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print one JSON document (logs: one per line)"
    )


def command(commands: Any, name: str, summary: str, *examples: str, details: str = "") -> argparse.ArgumentParser:
    """A subcommand whose --help has a one-line description, its arguments explained and examples; it
    takes the global options after its name too."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + "." + (f" {details}" if details else ""),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(parser, after_command=True)
    return parser


def add_stack_commands(commands: Any) -> None:
    submit = command(
        commands,
        "submit",
        "drop a spec into the stack's bucket and show its run",
        "batchdrop submit examples/specs/cpu-report.yaml",
        "batchdrop submit train.yaml --team vision --as experiments/lr-3e-4.yaml --follow",
        "batchdrop --stack batchdrop-prod submit train.yaml --wait --timeout 3600 --json",
        details="Uploads FILE to incoming/TEAM/ as `aws s3 cp` would and prints the receipt. A file the stack "
        "would not run as meant (not .yaml, .yml or .json, over the stack's size limit, no team) is refused "
        "without uploading it. Exit codes: 0 ok, 1 the spec was refused or rejected, 2 usage or environment "
        "error (or no receipt in time: it says what to check), 3 the run failed (--wait, --follow).",
    )
    submit.add_argument("file", metavar="FILE", help="the spec to submit (.yaml, .yml or .json, in any case)")
    submit.add_argument("--team", help="the team to submit as: incoming/TEAM/ (default: the spec's `team`)")
    submit.add_argument(
        "--as",
        dest="relative_path",
        metavar="PATH",
        help="the key below incoming/TEAM/, ending in .yaml, .yml or .json (default: FILE's name)",
    )
    waiting = submit.add_mutually_exclusive_group()
    waiting.add_argument("--wait", action="store_true", help="wait until the run ends; its outcome is the exit code")
    waiting.add_argument("--follow", action="store_true", help="like --wait, printing every state change")
    submit.add_argument(
        "--timeout",
        type=float,
        help=f"give up after this many seconds (default: {RECEIPT_TIMEOUT_SECONDS:.0f} for the receipt; "
        "with --wait or --follow, no limit on the run)",
    )
    submit.set_defaults(run=_submit)

    status = command(
        commands,
        "status",
        "show a run, who dropped it, its jobs, their states and attempts",
        "batchdrop status 3kq7c2m9x4t1v8b5n6pa",
        "batchdrop status 3kq7c2m9x4t1v8b5n6pa --json | jq '.jobs[].history'",
        "batchdrop status 3kq7c2m9x4t1v8b5n6pa --json | jq '.jobs[].attempt_ends'",
        details="A job that failed or was retried shows how each attempt ended: its failure in words, exit "
        "code and Batch's reason.",
    )
    status.add_argument("run_id", metavar="RUN_ID", help="the run's id (printed by submit, listed by list)")
    status.set_defaults(run=_status)

    listing = command(
        commands,
        "list",
        "list runs, newest first",
        "batchdrop list",
        "batchdrop list --team vision --status failed --since 7d",
        "batchdrop list --team vision --limit 100 --json",
        details="Without --team, every team of the stack's platform config.",
    )
    listing.add_argument("--team", action="append", help="only this team's runs (repeatable; default: every team)")
    listing.add_argument("--status", choices=RUN_STATUSES, help="only runs in this state")
    listing.add_argument("--since", help="only runs received since: 30m, 12h, 7d, or a date such as 2026-11-20")
    listing.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    listing.set_defaults(run=_list)

    cancel = command(
        commands,
        "cancel",
        "cancel a run's queued jobs and terminate its running ones",
        "batchdrop cancel 3kq7c2m9x4t1v8b5n6pa --reason 'wrong learning rate'",
        details="A run that has already ended is left as it is (exit 0).",
    )
    cancel.add_argument("run_id", metavar="RUN_ID", help="the run to stop")
    cancel.add_argument("--reason", help="why (recorded, and shown in Batch and Slack)")
    cancel.set_defaults(run=_cancel)

    logs = command(
        commands,
        "logs",
        "print a run's CloudWatch log lines, step by step and attempt by attempt",
        "batchdrop logs 3kq7c2m9x4t1v8b5n6pa",
        "batchdrop logs 3kq7c2m9x4t1v8b5n6pa --step train --index 3",
        "batchdrop logs 3kq7c2m9x4t1v8b5n6pa --step prep --follow",
        "batchdrop logs 3kq7c2m9x4t1v8b5n6pa --json | jq -r .message",
        details="A sweep or array step shows its failed children's logs (--index N: child N's).",
    )
    logs.add_argument("run_id", metavar="RUN_ID", help="the run whose logs to print")
    logs.add_argument("--step", help="only this step")
    logs.add_argument("--attempt", type=int, help="only this attempt (1 is the first)")
    logs.add_argument("--index", type=int, metavar="N", help="a sweep or array step: only child N (0 is the first)")
    logs.add_argument("--node", type=int, metavar="N", help="a multi-node step: only node N (from 0)")
    logs.add_argument("--follow", action="store_true", help="print new lines as they are written, until the job ends")
    logs.add_argument("--timeout", type=float, help="with --follow: stop after this many seconds")
    logs.set_defaults(run=_logs)


# ---------------------------------------------------------------------- wiring


class Stack:
    """The clients for one command, made from the global options, and what the commands act through."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.session = boto3.Session(profile_name=args.profile, region_name=args.region)
        self.endpoint_url: str | None = args.endpoint_url
        self.resources = StackResources.from_stack(self.client("cloudformation"), args.stack)
        self.table = RecordQueries(self.client("dynamodb"), self.resources.table)
        self.s3 = self.client("s3")
        self.batch = BatchGateway(self.client("batch", BATCH_CLIENT_CONFIG))
        self.log_streams = LogStreams(logs=self.client("logs"))
        self.runs = RunReader(table=self.table, batch=self.batch)
        self.uploader = Uploader(s3=self.s3, bucket=self.resources.bucket)
        self.follower = RunFollower(runs=self.runs, table=self.table)
        self.canceller = RunCanceller(runs=self.runs, table=self.table, batch=self.batch)
        self.run_logs = RunLogs(runs=self.runs, table=self.table, batch=self.batch, streams=self.log_streams)

    def client(self, service: str, config: Config = CLIENT_CONFIG) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, config=config)  # type: ignore[call-overload]

    def teams(self) -> list[str]:
        """Every team of the stack's platform config (for `list` without --team)."""
        location = self.resources.config_location
        if not location:
            raise OperationFailed("the stack does not say where its platform config is: pass --team")
        raw = read_config_bytes(location, s3_client=self.client("s3"), ssm_client=self.client("ssm"))
        return sorted(parse_platform_config(raw, config_name(location)).teams)

    def unknown_teams(self, teams: Sequence[str]) -> tuple[list[str], list[str]] | str:
        """Of these teams, those the platform config does not name, and the ones it does; or why the config
        could not be read (the runs are listed all the same: a file dropped under an unknown team is a run)."""
        try:
            known = self.teams()
        except (BatchdropError, ClientError, BotoCoreError) as exc:
            return f"cannot read the stack's platform config to check the team ({exc})"
        return [team for team in teams if team not in known], known

    def caller(self) -> str:
        arn: str = self.client("sts").get_caller_identity()["Arn"]
        return arn


# ---------------------------------------------------------------------- submit


def _submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    raw = _read(path)
    team = args.team or _team_of(path, raw)
    relative_path = (args.relative_path or path.name).lstrip("/")
    problems = drop_problems(raw, team, relative_path)
    if problems:  # refused before anything is uploaded (or any AWS is asked): the stack would not run it
        _print_refusal(path, team, relative_path, problems, as_json=args.json)
        return EXIT_INVALID
    assert team is not None  # a missing team is one of the problems
    return drop_and_show(args, Stack(args), raw, team, relative_path, what=str(path))


def drop_and_show(
    args: argparse.Namespace, stack: Stack, raw: bytes, team: str, relative_path: str, *, what: str
) -> int:
    """Upload the file, wait for its receipt and print it; with --wait or --follow, the run's end."""
    started = time.monotonic()
    upload = stack.uploader.upload(raw, team, relative_path)
    display = _Display(sys.stderr, quiet=args.json)
    display.say(f"uploaded {what} to {upload.source.uri} (run {upload.run_id}); waiting for its receipt…")
    timeout = args.timeout if args.timeout is not None else RECEIPT_TIMEOUT_SECONDS
    try:
        receipt = stack.uploader.wait_for_receipt(upload, timeout=timeout)
    except ReceiptTimedOut as late:
        if args.json:
            print_json({"run_id": upload.run_id, "source": upload.source.model_dump(mode="json"), "receipt": None})
        print(f"batchdrop: {no_receipt_advice(upload, stack.resources, waited=late.waited)}", file=sys.stderr)
        return EXIT_USAGE
    if not (args.wait or args.follow):
        if args.json:
            print_json(_receipt_json(receipt))
        else:
            _print_receipt(receipt, upload)
        return EXIT_INVALID if receipt.status == "rejected" else EXIT_OK
    if receipt.status == "rejected":
        if args.json:
            print_json({"receipt": _receipt_json(receipt), **stack.runs.view(receipt.run_id).as_json()})
        else:
            _print_receipt(receipt, upload)
        return EXIT_INVALID
    if not args.json:
        _print_receipt(receipt, upload)
    deadline = None if args.timeout is None else started + args.timeout
    following = args.follow and not args.json
    final = _follow(stack.follower, receipt.run_id, follow=following, display=display, deadline=deadline)
    if args.json:
        print_json({"receipt": _receipt_json(receipt), **final.as_json()})
    else:
        print()
        _print_view(final)
    return EXIT_OK if final.run.status == "succeeded" else EXIT_RUN_FAILED


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OperationFailed(f"cannot read {path}: {exc.strerror or exc}") from exc


def _team_of(path: Path, raw: bytes) -> str | None:
    """The spec's `team:`, read even from a spec that is otherwise invalid (the stack says why)."""
    document_format = format_for(path.name)
    data: Any = None
    if document_format is not None:
        with contextlib.suppress(InvalidInput):
            data = load_document(raw, document_format).data
    team = data.get("team") if isinstance(data, dict) else None
    return team if isinstance(team, str) and team else None


def _print_refusal(path: Path, team: str | None, relative_path: str, problems: list[Problem], *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "file": str(path),
                "uploaded": False,
                "team": team,
                "key": f"{INCOMING}{team or TEAM_PLACEHOLDER}/{relative_path}",
                "problems": [problem.model_dump() for problem in problems],
            }
        )
        return
    print(f"{STDOUT.paint('✗', 'red')} {path}: not uploaded; the stack would not run it as you mean")
    _print_problems(problems, len(problems))


def _follow(follower: RunFollower, run_id: str, *, follow: bool, display: _Display, deadline: float | None) -> RunView:
    last: Progress | None = None
    for progress in follower.watch(run_id):
        last = progress
        if follow:
            display.clear()
            for moment, job, transition in progress.events:
                if transition is None:
                    print(f"{_clock(moment)}  {job.step:<16} children: {_counts(job.children)}", flush=True)
                else:
                    print(_transition_line(job, transition), flush=True)
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
    status = transition.status
    if status == "FAILED" and job.status == "FAILED":  # the job's end: cancelled, if it was
        status = shown_status(job)
    shown = STDOUT.status(status, width=10)
    return f"{_clock(transition.at)}  {job.step:<16} {shown}{attempt}  ({job.queue}){reason}"


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
    view = Stack(args).runs.view(args.run_id, with_history=True, with_standing=True)
    if args.json:
        print_json(view.as_json())
    else:
        _print_view(view)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise OperationFailed("--limit must be at least 1")
    stack = Stack(args)
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    teams = args.team or stack.teams()
    if args.team:
        checked = stack.unknown_teams(args.team)
        if isinstance(checked, str):
            print(f"batchdrop: {checked}; listing anyway", file=sys.stderr)
        elif checked[0]:
            unknown, known = checked
            print(
                f"batchdrop: team {', '.join(unknown)} is not in the platform config (its teams: "
                f"{', '.join(known) or 'none'}); listing the runs of files dropped under it anyway",
                file=sys.stderr,
            )
    runs, more = stack.runs.runs(teams, status=args.status, since=since, limit=args.limit)
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
    _print_table(rows, status_column=4)
    if more:
        print(f"… more runs: pass --limit {args.limit * 2}, or narrow with --since / --status")
    return EXIT_OK


def _print_view(view: RunView) -> None:
    run = view.run
    title = f"run {run.run_id}: {run.spec_name or Path(run.source.key).name} for team {run.team}"
    print(title + (f" ({run.environment})" if run.environment else "") + f" — {STDOUT.status(run.status.upper())}")
    print(f"  source    {run.source.uri}")
    if run.dropped_by:
        print(f"  dropped by {run.dropped_by}")
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
    cost = run_cost(run.run_id, [*view.jobs, *view.replaced.values()])  # recoveries ran too; reused steps did not
    if cost.known:  # only where a queue has prices (docs/costs.md)
        print(f"  cost      {cost.words()}, estimated" + ("" if view.ended else " so far"))
    for warning in run.warnings:
        print(f"  warning   {warning}")
    if view.ended and run.status != "rejected":  # the report function wrote it when the run ended
        print(f"  report    s3://{run.source.bucket}/{run_report_key(run.run_id)}")
    else:  # rejected (no run.ended) or still going: built from the records on request
        print(f"  report    batchdrop report {run.run_id} --open")
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
            shown_status(job),
            "—" if job.array_size else f"{job.attempts}/{job.max_attempts}",  # its children make the attempts
            "" if job.exit_code is None else str(job.exit_code),
            job.job_id,
        )
        for job in view.jobs
    ]
    _print_table(rows, indent="  ", status_column=2)
    for job in view.jobs:
        notes = _job_notes(view, job)
        if notes:
            print(f"  {job.step}:")
            for note in notes:
                print(f"    {note}")


def _job_notes(view: RunView, job: JobRecord) -> list[str]:
    """What `status` says under the table of a step: reused from which run, its recovery chain on one line,
    children, failure, attempts and logs."""
    notes = []
    reused = view.reused_from(job)
    if reused:
        notes.append(f"reused from run {reused} (its usage is counted there)")
    if story := view.story(job):
        notes.append(f"recovery: {story}")
    if standing := view.standing.get(job.job_id):
        notes.append(f"where it stands: {standing}")
    if job.children:
        notes.append(f"children: {_counts(job.children)}")
    if job.nodes:
        notes += _node_notes(job)
    if (usd := view.job_cost(job)) is not None:  # once it has ended, as `status --json` tells it
        notes.append(f"cost: {money_words(usd)}, estimated")
    if job.failure:
        notes.append(f"failure: {job.failure}")
    if len(job.attempt_ends) > 1 or any(end.failure for end in job.attempt_ends):
        notes += [attempt_line(end) for end in job.attempt_ends]
    notes += [f"log (attempt {link.attempt}): {link.url}" for link in job.log_links]
    return notes


MAX_NODE_LINES = 10


def _node_notes(job: JobRecord) -> list[str]:
    """A multi-node job's nodes: how many ended how (the line Slack says), and each failed node's end (the
    first few), which say why the job failed when its main node only lost a peer."""
    ends = [t.attempt_end for t in job.ordered_history() if t.attempt_end and t.attempt_end.node is not None]
    latest = {end.node: end for end in ends}  # the last attempt's end of each node
    failed = [end for _, end in sorted(latest.items(), key=lambda item: item[0] or 0) if end.failure_class]
    summary = node_summary(job)  # the line Slack says, from the node ends the record keeps
    # The record does not know which node is the main one (the job definition's `mainNode`): not said.
    if summary is not None:
        failed = [end for end in failed if end.attempt == summary.attempt]  # the job's latest attempt's, as counted
        notes = [f"{summary.words()}; `batchdrop logs --node N` shows node N's log"]
    else:  # a record tracked before node ends were kept: from its history
        ended = f": {len(latest) - len(failed)} succeeded, {len(failed)} failed" if latest else ""
        notes = [f"nodes: {job.nodes}{ended}; `batchdrop logs --node N` shows node N's log"]
    notes += [attempt_line(end) for end in failed[:MAX_NODE_LINES]]
    if len(failed) > MAX_NODE_LINES:
        notes.append(f"… and {len(failed) - MAX_NODE_LINES} more failed nodes (status --json lists every one)")
    return notes


def attempt_line(end: AttemptEnd) -> str:
    """How one attempt ended: `attempt 1 failed: the instance was reclaimed (spot interruption) (Host EC2
    (instance i-0…) terminated.)`, `attempt 2: succeeded, exit 0`; `node 2: …` first for a node's. A
    failure is told in tracking's words (`track.failures.retried_because`, as a retry's message says it)."""
    node = f"node {end.node}: " if end.node is not None else ""
    if end.failure is None and end.failure_class is None:  # Batch's reason for a success tells nothing
        return f"{node}attempt {end.attempt}: succeeded" + (
            f", exit {end.exit_code}" if end.exit_code is not None else ""
        )
    words = retried_because(end)
    if end.exit_code is not None and f"code {end.exit_code}" not in words:  # the words may say it already
        words += f", exit {end.exit_code}"
    reasons = [reason for reason in (end.status_reason, end.reason) if reason and reason not in words]
    why = f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else ""
    return f"{node}{words}{why}"


def _print_receipt(receipt: Receipt, upload: Upload) -> None:
    if receipt.status == "rejected":
        print(f"{STDOUT.paint('✗', 'red')} run {receipt.run_id}: {upload.source.uri} was rejected")
        _print_problems(receipt.problems, receipt.problem_count)
        return
    tick = STDOUT.paint("✓", "green")
    print(
        f"{tick} run {receipt.run_id}: {receipt.spec_name} submitted for team {receipt.team}, {len(receipt.jobs)}"
        " job(s)"
    )
    for job in receipt.jobs:
        if job.reused_from:
            print(f"    {job.step:<16} reused (run {job.reused_from}, job {job.job_id})")
            continue
        array = f" (array of {job.array_size:,})" if job.array_size else ""
        if job.reused_children:  # a sweep resumed in part: the children that succeeded are not run again
            runs = f"{job.array_size:,} children" if job.array_size else "1 child"
            array = f" ({runs}; {job.reused_children:,} reused from run {job.reused_children_from})"
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
    stack = Stack(args)
    try:
        requests = stack.canceller.cancel(args.run_id, who=stack.caller(), reason=args.reason)
    except RunAlreadyEnded as ended:  # nothing to stop: what was asked is already so
        if args.json:
            print_json({"run_id": args.run_id, "already_ended": ended.status, "jobs": []})
        else:
            print(f"run {args.run_id} already ended: {ended.status}")
        return EXIT_OK
    if args.json:
        print_json({"run_id": args.run_id, "jobs": [vars(request) for request in requests]})
    else:
        for request in requests:
            detail = f": {request.detail}" if request.detail else ""
            print(f"  {request.step:<16} {request.status:<10} {request.action}{detail}")
        print(f"run {args.run_id}: cancel requested; `batchdrop status {args.run_id}` shows when its jobs have stopped")
    return EXIT_OK if all(request.action != "failed" for request in requests) else 2


def _logs(args: argparse.Namespace) -> int:
    stack = Stack(args)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    sections = stack.run_logs.sections(
        args.run_id, step=args.step, attempt=args.attempt, index=args.index, node=args.node
    )
    while args.follow and any(section.not_started for section in sections):  # --follow waits for it to start
        _before(deadline, f"run {args.run_id}: its jobs have not started; stopped waiting (--timeout)")
        stack.log_streams.sleep(LOG_POLL_SECONDS)
        sections = stack.run_logs.sections(
            args.run_id, step=args.step, attempt=args.attempt, index=args.index, node=args.node
        )
    for section in sections:
        if args.follow and section.log_stream and section.status not in ENDED:
            _follow_section(stack, args, section, deadline)
            continue
        if args.json:
            for moment, line in section.lines:
                _print_log_json(section, moment, line)
            continue
        _print_section_head(section)
        for moment, line in section.lines:
            print(f"{_when(moment)}  {line}")
        if section.url and (section.missing or not section.lines):
            print(f"console: {section.url}")
        print()
    return EXIT_OK


def _before(deadline: float | None, message: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OperationFailed(message)


def _print_section_head(section: LogSection) -> None:
    child = f"[{section.index}]" if section.index is not None else ""
    child += f" node {section.node}" if section.node is not None else ""
    status = f" · {STDOUT.status(section.status)}" if section.status else ""
    where = f" · {section.log_stream}" if section.log_stream else ""
    print(f"==> {section.step}{child} · attempt {section.attempt}{status}{where} <==")
    if section.missing:
        print(f"(no log lines: {section.missing})")


def _print_log_json(section: LogSection, moment: datetime, line: str) -> None:
    record = {
        "step": section.step,
        "job_id": section.job_id,
        "index": section.index,
        "attempt": section.attempt,
        "at": moment.astimezone(UTC).isoformat(),
        "message": line,
    }
    print(json.dumps(record, ensure_ascii=False), flush=True)


def _follow_section(stack: Stack, args: argparse.Namespace, section: LogSection, deadline: float | None) -> None:
    """Stream one running job's log until the job ends (or --timeout)."""
    assert section.log_group is not None
    assert section.log_stream is not None

    def still_running() -> bool:
        _before(deadline, f"run {args.run_id}: stopped following its logs (--timeout); the job goes on")
        current = stack.run_logs.sections(args.run_id, step=section.step, attempt=section.attempt, index=section.index)
        return any(other.log_stream == section.log_stream and other.status not in ENDED for other in current)

    if not args.json:
        _print_section_head(section)
    lines = stack.log_streams.follow(
        section.log_group, section.log_stream, still_running=still_running, poll=LOG_POLL_SECONDS
    )
    for moment, line in lines:
        if args.json:
            _print_log_json(section, moment, line)
        else:
            print(f"{_when(moment)}  {line}", flush=True)
    if not args.json:
        print()


# ---------------------------------------------------------------------- printing


def _counts(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{count:,} {status}" for status, count in sorted(counts.items()) if count)


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def _print_table(rows: Sequence[tuple[str, ...]], indent: str = "", status_column: int | None = None) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if status_column is not None and number > 0:  # coloured after padding: escapes take no column
            cells[status_column] = STDOUT.status(row[status_column], width=widths[status_column])
        print(indent + "  ".join(cells).rstrip())


class Colour:
    """ANSI colour on a terminal; none when piped or redirected, or when `NO_COLOR` is set (no-color.org)."""

    CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}  # noqa: RUF012
    STATUSES = {  # noqa: RUF012
        "SUCCEEDED": "green",
        "FAILED": "red",
        "LOST": "red",
        "CANCELLED": "yellow",
        "RUNNING": "blue",
        "STARTING": "blue",
        "REJECTED": "red",
    }

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    @property
    def enabled(self) -> bool:
        if os.environ.get("NO_COLOR"):
            return False
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def paint(self, text: str, colour: str) -> str:
        return f"\033[{self.CODES[colour]}m{text}\033[0m" if self.enabled and text else text

    def status(self, status: str, width: int = 0) -> str:
        """A status word in its colour, padded to `width` columns."""
        padded = status.ljust(width)
        colour = self.STATUSES.get(status.upper())
        if colour is None or not self.enabled:
            return padded
        return self.paint(status, colour) + padded[len(status) :]


class _Stdout(Colour):
    """Colour for standard output, asked of `sys.stdout` as it is when printing (tests replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def enabled(self) -> bool:
        self.stream = sys.stdout
        return super().enabled


STDOUT = _Stdout()


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
