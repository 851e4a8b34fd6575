"""`batchdrop rerun RUN_ID [--steps a,b] [--set STEP.FIELD=VALUE ...] [--wait|--follow]`: the command. What it
drops is `batchdrop_cli.reruns`'s (the run's own spec with `resume:`), dropped and followed exactly as
`batchdrop submit` drops a file (`stack.drop_and_show`)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from batchdrop_cli.reruns import request_problems, rerun_request
from batchdrop_cli.spec_edits import parse_edits
from batchdrop_cli.stack import EXIT_INVALID, STDOUT, Stack, command, drop_and_show, print_json


def add_rerun_command(commands: Any) -> None:
    rerun = command(
        commands,
        "rerun",
        "run a run's spec again, reusing every step that succeeded (docs/resume.md)",
        "batchdrop rerun 3kq7c2m9x4t1v8b5n6pa --follow",
        "batchdrop rerun 3kq7c2m9x4t1v8b5n6pa --steps evaluate --wait",
        "batchdrop rerun 3kq7c2m9x4t1v8b5n6pa --set train.resources.memory_mib=65536",
        details="Drops the run's own spec file again under its team's folder, as "
        "incoming/TEAM/<its path>.rerun-<time>.json, with `resume: RUN_ID` (and `rerun:` for --steps, and each "
        "--set applied): the "
        "submit function reuses each step that succeeded and is unchanged, and submits the rest. It needs only "
        "the team's permission on the bucket. Exit codes as for submit.",
    )
    rerun.add_argument("run_id", metavar="RUN_ID", help="the run to rerun (it must have ended)")
    rerun.add_argument("--steps", help="steps to run again even if they succeeded, with every step after them: a,b")
    rerun_waiting = rerun.add_mutually_exclusive_group()
    rerun_waiting.add_argument(
        "--wait", action="store_true", help="wait until the run ends; its outcome is the exit code"
    )
    rerun_waiting.add_argument("--follow", action="store_true", help="like --wait, printing every state change")
    rerun.add_argument(
        "--set",
        dest="edits",
        action="append",
        default=[],
        metavar="STEP.FIELD=VALUE",
        help="change the spec before it is dropped (repeatable), e.g. train.resources.memory_mib=65536, "
        "evaluate.env.SEED=7, train.retries.attempts=3; a spec without steps is step `main`. VALUE is read as "
        "in a YAML spec. A changed step runs again, with every step after it",
    )
    rerun.add_argument("--timeout", type=float, help="give up after this many seconds (as for submit)")
    rerun.set_defaults(run=_rerun)


def _rerun(args: argparse.Namespace) -> int:
    steps = [step.strip() for step in (args.steps or "").split(",") if step.strip()]
    edits = parse_edits(args.edits)  # a malformed --set is refused before AWS is asked anything
    stack = Stack(args)
    request = rerun_request(stack.table, stack.s3, args.run_id, steps, now=datetime.now(UTC), edits=edits)
    for change in request.changes:
        print(f"set {change.words()}", file=sys.stderr)
    problems = request_problems(request)
    if problems:  # refused before anything is uploaded, in the spec's own words
        if args.json:
            print_json({"run_id": args.run_id, "uploaded": False, "problems": [p.model_dump() for p in problems]})
        else:
            print(f"{STDOUT.paint('✗', 'red')} a rerun of {args.run_id}: not uploaded; the stack would reject it")
            for problem in problems:  # no line numbers: they would be the generated file's, not the spec's
                print(f"    {problem.path + ': ' if problem.path else ''}{problem.message}")
        return EXIT_INVALID
    return drop_and_show(
        args, stack, request.body, request.team, request.relative_path, what=f"a rerun of {args.run_id}"
    )
