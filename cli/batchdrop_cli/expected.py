"""`batchdrop plan --expected`: a plan's expected case, from the spec's earlier runs on a stack (docs/budgets.md).

The worst case needs only the platform config; the expected case needs what the same steps took before: the
spec's newest runs (at most `EARLIER_RUNS`) are read from the stack's records table without a scan
(`RecordQueries.earlier_runs`: the runs made from the key the file would be dropped at, else those of the
same spec name among the team's newest), and each step's median run time is priced with this plan's
resources and its queues' prices (`platform.budgets.expected_case`). A stack that cannot be read costs the
plan its expected case, never its worst case.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.errors import BatchdropError
from batchdrop.gateways.bucket import INCOMING
from batchdrop.platform.budgets import EARLIER_RUNS, ExpectedCase, expected_case
from batchdrop.platform.costs import money_words
from batchdrop.platform.planning import Plan
from batchdrop.store.queries import EarlierRuns
from batchdrop_cli.stack import Stack

OFFLINE = "unknown offline: `batchdrop plan --expected` reads the steps' earlier runs from the stack"


@dataclass(frozen=True)
class Expected:
    """A plan's expected case and the earlier runs it is made of; or why there is none."""

    case: ExpectedCase | None = None
    earlier: EarlierRuns | None = None
    unavailable: str = OFFLINE
    """Why there is no expected case (offline, or the stack could not be read): when `earlier` is None."""


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


def read_expected(args: argparse.Namespace, plan: Plan) -> Expected:
    """The plan's expected case from the stack's records of the spec's earlier runs; a stack that cannot be
    read (not deployed, no credentials, refused) is said in one line."""
    relative_path = (args.relative_path or Path(args.file).name).lstrip("/")
    try:
        stack = Stack(args)
        earlier = stack.table.earlier_runs(
            bucket=stack.resources.bucket,
            key=f"{INCOMING}{plan.team}/{relative_path}",
            team=plan.team,
            spec_name=plan.spec_name,
            limit=EARLIER_RUNS,
        )
    except (BatchdropError, ClientError, BotoCoreError) as exc:
        return Expected(unavailable=f"unknown: the stack's earlier runs could not be read ({exc})")
    return Expected(expected_case(plan, earlier.run_minutes), earlier)


def expected_json(expected: Expected) -> dict[str, Any]:
    """`plan --json`'s `budget.expected`: the same keys with or without an expected case."""
    case, earlier = expected.case, expected.earlier
    if case is None or earlier is None:
        return {"known": False, "usd": None, "runs_read": 0, "read": None, "steps": [], "words": expected.unavailable}
    return {
        "known": case.known,
        "usd": round(case.usd, 2) if case.known else None,
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
            for step in case.steps
        ],
        "words": summary_words(case, earlier),
    }


def summary_words(case: ExpectedCase, earlier: EarlierRuns) -> str:
    """The expected case in one line: about $X, or why there is none."""
    runs = f"{len(earlier.runs)} earlier run{'s' if len(earlier.runs) != 1 else ''} ({earlier.read})"
    if not earlier.runs:
        return f"unknown: no earlier runs ({earlier.read}); the worst case stands alone"
    if not case.known:
        return f"unknown: none of these steps succeeded in {runs}; the worst case stands alone"
    total = f"about {money_words(case.usd)}, from {runs}"
    if case.unknown:
        total += f"; {', '.join(case.unknown)} never ran before, left out"
    return total


def expected_lines(expected: Expected) -> list[str]:
    """What `plan` prints after the worst case."""
    case, earlier = expected.case, expected.earlier
    if case is None or earlier is None:
        return [f"expected: {expected.unavailable}"]
    if not case.known:
        return [f"expected: {summary_words(case, earlier)}"]
    return ["expected:", *(f"  {step.words}" for step in case.steps), f"  in all: {summary_words(case, earlier)}"]
