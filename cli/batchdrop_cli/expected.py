"""`batchdrop plan --expected`: a plan's expected case, from the spec's earlier runs on a stack (docs/budgets.md).

The worst case needs only the platform config; the expected case needs what the same steps took before: the
spec's newest runs (at most `EARLIER_RUNS`) are read from the stack's records table without a scan
(`RecordQueries.earlier_runs`: the runs made from the key the file would be dropped at, else those of the
same spec name among the team's newest), and each step's median run time is priced with this plan's
resources and its queues' prices (`platform.budgets.expected_case`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from batchdrop.gateways.bucket import INCOMING
from batchdrop.platform.budgets import EARLIER_RUNS, ExpectedCase, expected_case
from batchdrop.platform.costs import money_words
from batchdrop.platform.planning import Plan
from batchdrop.store.queries import EarlierRuns
from batchdrop_cli.stack import Stack

OFFLINE = "unknown offline: `batchdrop plan --expected` reads the steps' earlier runs from the stack"


def add_expected_options(plan: argparse.ArgumentParser) -> None:
    plan.add_argument(
        "--expected",
        action="store_true",
        help="also print the expected case: each step's median run time in the spec's last "
        f"{EARLIER_RUNS} runs on the stack (--stack, --endpoint-url), at this plan's resources and prices",
    )
    plan.add_argument(
        "--as",
        dest="relative_path",
        metavar="PATH",
        help="with --expected: the key below incoming/TEAM/ its earlier runs were dropped at (default: FILE's name)",
    )


def read_expected(args: argparse.Namespace, plan: Plan) -> tuple[ExpectedCase, EarlierRuns]:
    """The plan's expected case from the stack's records of the spec's earlier runs."""
    stack = Stack(args)
    relative_path = (args.relative_path or Path(args.file).name).lstrip("/")
    earlier = stack.operations.table.earlier_runs(
        bucket=stack.resources.bucket,
        key=f"{INCOMING}{plan.team}/{relative_path}",
        team=plan.team,
        spec_name=plan.spec_name,
        limit=EARLIER_RUNS,
    )
    return expected_case(plan, earlier.run_minutes), earlier


def expected_json(found: tuple[ExpectedCase, EarlierRuns] | None) -> dict[str, Any]:
    """`plan --json`'s `budget.expected`: the same keys offline (known false, no steps) and with --expected."""
    if found is None:
        return {"known": False, "usd": None, "runs_read": 0, "read": None, "steps": [], "words": OFFLINE}
    expected, earlier = found
    return {
        "known": expected.known,
        "usd": round(expected.usd, 2) if expected.known else None,
        "runs_read": len(earlier.runs),
        "read": earlier.read,
        "steps": [
            {
                "step": step.step,
                "earlier_jobs": step.samples,
                "median_minutes": None if step.minutes is None else round(step.minutes, 2),
                "expected_usd": None if step.usd is None else round(step.usd, 2),
                "words": step.words,
            }
            for step in expected.steps
        ],
        "words": summary_words(expected, earlier),
    }


def summary_words(expected: ExpectedCase, earlier: EarlierRuns) -> str:
    """The expected case in one line: about $X, or why there is none."""
    runs = f"{len(earlier.runs)} earlier run{'s' if len(earlier.runs) != 1 else ''} ({earlier.read})"
    if not earlier.runs:
        return f"unknown: no earlier runs ({earlier.read}); the worst case stands alone"
    if not expected.known:
        return f"unknown: none of these steps succeeded in {runs}; the worst case stands alone"
    total = f"about {money_words(expected.usd)}, from {runs}"
    if expected.unknown:
        total += f"; {', '.join(expected.unknown)} never ran before, left out"
    return total


def expected_lines(found: tuple[ExpectedCase, EarlierRuns] | None) -> list[str]:
    """What `plan` prints after the worst case."""
    if found is None:
        return [f"expected: {OFFLINE}"]
    expected, earlier = found
    if not expected.known:
        return [f"expected: {summary_words(expected, earlier)}"]
    return [
        "expected:",
        *(f"  {step.words}" for step in expected.steps),
        f"  in all: {summary_words(expected, earlier)}",
    ]
