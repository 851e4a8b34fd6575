"""`batchdrop costs [--team T]... [--since 30d] [--by team|spec|queue|tag:KEY] [--json]`: what teams spent, and
who spent most (docs/costs.md), read from the records table without a scan.

By team, spec or queue, from each team's monthly totals (`batchdrop.store.costs`: one item a team and month,
kept up to date as jobs end): months are whole, so a `--since` that cuts a month counts all of it, and the
output says so. By a tag, from the runs the teams received in the window (each team's runs by time, GSI1),
their jobs' records and their spec files (a job's tags are its spec's, read back from the bucket): slower,
and it says how many runs it read.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from batchdrop.errors import SpecRejected
from batchdrop.events.contract import Usage
from batchdrop.platform.costs import cost_of, money_words
from batchdrop.spec.parse import parse_spec
from batchdrop.store.chains import replaced_jobs
from batchdrop.store.costs import MonthCost, Tally, TeamCosts, month_of
from batchdrop.store.records import JobRecord, RunRecord
from batchdrop_cli.operations import OperationFailed, parse_since
from batchdrop_cli.stack import EXIT_OK, Stack, command, print_json

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_SINCE = "30d"
DEFAULT_TOP = 10
BY_CHOICES = ("team", "spec", "queue")
NO_TAG = "(no tag)"
UNREADABLE_SPEC = "(spec file unreadable)"


class MonthReader(Protocol):  # `batchdrop.store.costs.TeamCosts`
    def months(self, teams: Iterable[str], months: Iterable[str]) -> list[MonthCost]: ...


class RunLister(Protocol):  # `batchdrop.store.queries.RecordQueries`
    table_name: str

    def list_runs(
        self, team: str, *, since: datetime | None = None, limit: int = 50, start: dict[str, Any] | None = None
    ) -> tuple[list[RunRecord], dict[str, Any] | None]: ...

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]: ...


@dataclass(frozen=True)
class CostLine:
    name: str
    tally: Tally


@dataclass(frozen=True)
class CostSummary:
    """Totals and spenders, largest first, with what was read to make them."""

    by: str
    teams: list[str]
    since: datetime
    lines: list[CostLine]
    total: Tally
    read: str
    """What the figures were read from, in words."""
    months: list[str] = field(default_factory=list)
    """The months counted (by team, spec or queue)."""
    whole_months_from: datetime | None = None
    """Where counting starts when `since` cuts a month: the month's first day (it is counted whole)."""


def parse_by(text: str) -> tuple[str, str | None]:
    """`team`, `spec`, `queue`, or `tag:KEY`: what to group by, and the tag's key."""
    if text in BY_CHOICES:
        return text, None
    kind, _, key = text.partition(":")
    if kind == "tag" and key:
        return "tag", key
    raise OperationFailed(f"--by {text!r}: say team, spec, queue or tag:KEY (e.g. tag:project)")


def months_since(since: datetime, now: datetime) -> list[str]:
    """Every month from the one `since` falls in to the one `now` does, oldest first."""
    if since > now:
        raise OperationFailed(f"--since {since:%Y-%m-%d} is in the future")
    months, year, month = [], since.astimezone(UTC).year, since.astimezone(UTC).month
    last = month_of(now.astimezone(UTC))
    while True:
        months.append(f"{year:04d}-{month:02d}")
        if months[-1] >= last:
            return months
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def monthly_costs(ledger: MonthReader, teams: Sequence[str], by: str, since: datetime, now: datetime) -> CostSummary:
    """By team, spec or queue, from the teams' monthly items overlapping the window (one read each)."""
    months = months_since(since, now)
    kept = ledger.months(teams, months)
    sums: dict[str, Tally] = defaultdict(Tally)
    for month in kept:
        if by == "team":
            sums[month.team] = sums[month.team].plus(month.total)
            continue
        for name, tally in month.by.get(by, {}).items():
            shown = f"{month.team}: {name}" if by == "spec" and len(teams) > 1 else name  # spec names are a team's
            sums[shown] = sums[shown].plus(tally)
    start = since.astimezone(UTC)
    first_day = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return CostSummary(
        by=by,
        teams=list(teams),
        since=since,
        lines=_largest_first(sums),
        total=_sum(month.total for month in kept),
        read=f"{len(months) * len(teams)} monthly totals ({len(kept)} with costs)",
        months=months,
        whole_months_from=first_day if first_day < start else None,
    )


def tag_costs(table: RunLister, s3: S3Client, teams: Sequence[str], key: str, since: datetime) -> CostSummary:
    """By a tag's value: the runs received in the window, their own jobs' costs (a reused step's job is the
    run's that ran it; a recovery's replaced job counts) and their spec files' tags."""
    sums: dict[str, Tally] = defaultdict(Tally)
    runs = [run for team in teams for run in _runs(table, team, since) if run.jobs]
    for run in runs:
        tags = _step_tags(s3, run)
        jobs = table.get_jobs(ref.job_id for ref in run.jobs)
        jobs |= replaced_jobs(table.get_jobs, list(jobs.values()))
        for job in jobs.values():
            if job.run_id != run.run_id:
                continue  # a reused step's job: counted in the run that ran it
            value = UNREADABLE_SPEC if tags is None else tags.get(job.step, {}).get(key, NO_TAG)
            sums[value] = sums[value].plus(_tally_of(job))
    return CostSummary(
        by=f"tag:{key}",
        teams=list(teams),
        since=since,
        lines=_largest_first(sums),
        total=_sum(sums.values()),
        read=f"{len(runs)} runs received since {since:%Y-%m-%d %H:%M} UTC, their jobs' records and spec files",
    )


def _runs(table: RunLister, team: str, since: datetime) -> list[RunRecord]:
    found: list[RunRecord] = []
    start: dict[str, Any] | None = None
    while True:
        page, start = table.list_runs(team, since=since, limit=100, start=start)
        found += page
        if not start:
            return found


def _step_tags(s3: S3Client, run: RunRecord) -> dict[str, dict[str, str]] | None:
    """Each step's tags (a step's merged over the spec's), from the run's spec file as it was; None if it
    cannot be read again (gone, or changed in a bucket that keeps no versions)."""
    arguments: dict[str, Any] = {"Bucket": run.source.bucket, "Key": run.source.key}
    if run.source.version_id and run.source.version_id != "null":
        arguments["VersionId"] = run.source.version_id
    try:
        raw = s3.get_object(**arguments)["Body"].read()
        parsed = parse_spec(raw, run.source.key)
    except (ClientError, SpecRejected):
        return None
    if run.spec_digest and hashlib.sha256(raw).hexdigest() != run.spec_digest:
        return None
    return {draft.step: dict(draft.settings.tags or {}) for draft in parsed.jobs}


def _tally_of(job: JobRecord) -> Tally:
    usd = cost_of(job)
    usage = job.told_usage or Usage()
    return Tally(
        usd=usd or 0.0,
        jobs=1,
        unpriced_jobs=1 if usd is None else 0,
        vcpu_hours=usage.vcpu_hours,
        memory_gib_hours=usage.memory_gib_hours,
        gpu_hours=usage.gpu_hours,
    )


def _sum(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total = total.plus(tally)
    return total


def _largest_first(sums: dict[str, Tally]) -> list[CostLine]:
    lines = [CostLine(name, tally) for name, tally in sums.items()]
    return sorted(lines, key=lambda line: (-line.tally.usd, -line.tally.vcpu_hours, line.name))


# ---------------------------------------------------------------------- the command


def add_costs_command(commands: Any) -> None:
    costs = command(
        commands,
        "costs",
        "show what teams spent (estimates from the queues' prices), largest first",
        "batchdrop costs --team vision",
        "batchdrop costs --since 90d --by spec --top 5",
        "batchdrop costs --team vision --team nlp --by tag:project --json",
        details="By team, spec or queue, from each team's monthly totals (kept as jobs end: whole months, so "
        "a --since that cuts a month counts all of it). By tag:KEY, from the runs received in the window, their "
        "jobs and their spec files (slower: it reads every run). Dollars are the platform config's estimates, "
        "not the bill (docs/costs.md).",
    )
    costs.add_argument(
        "--team", action="append", default=[], help="a team to show (repeatable; default: every team of the stack)"
    )
    costs.add_argument(
        "--since", default=DEFAULT_SINCE, help=f"from when: 30m, 12h, 7d, or a date (default {DEFAULT_SINCE})"
    )
    costs.add_argument("--by", default="team", metavar="team|spec|queue|tag:KEY", help="what to total by")
    costs.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"show the N largest (default {DEFAULT_TOP})")
    costs.set_defaults(run=_costs)


def _costs(args: argparse.Namespace) -> int:
    by, key = parse_by(args.by)  # bad input is refused before AWS is asked anything
    now = datetime.now(UTC)
    since = parse_since(args.since, now)
    if args.top < 1:
        raise OperationFailed(f"--top {args.top}: show at least 1")
    stack = Stack(args)
    teams = sorted(set(args.team)) or stack.teams()
    table = stack.table
    if key is None:
        summary = monthly_costs(TeamCosts(table.client, table.table_name), teams, by, since, now)
    else:
        summary = tag_costs(table, stack.s3, teams, key, since)
    if args.json:
        print_json(summary_json(summary))
    else:
        print("\n".join(summary_lines(summary, args.top)))
    return EXIT_OK


def summary_json(summary: CostSummary) -> dict[str, Any]:
    return {
        "by": summary.by,
        "teams": summary.teams,
        "since": summary.since.isoformat(),
        "months": summary.months,
        "counted_from": (summary.whole_months_from or summary.since).isoformat(),
        "read": summary.read,
        "total": asdict(summary.total),
        "lines": [{"name": line.name, **asdict(line.tally)} for line in summary.lines],
    }


def summary_lines(summary: CostSummary, top: int) -> list[str]:
    """The human table: a heading, the window as counted, the largest `top` lines and the total."""
    teams = ", ".join(summary.teams) if len(summary.teams) <= 5 else f"{len(summary.teams)} teams"
    lines = [f"costs of {teams} since {summary.since:%Y-%m-%d %H:%M} UTC, by {summary.by}"]
    if summary.whole_months_from is not None:
        lines.append(
            f"  months are counted whole: from {summary.whole_months_from:%Y-%m-%d} ({summary.months[0]} in full)"
        )
    lines.append(f"  read: {summary.read}")
    if not summary.lines:
        return [*lines, "", "no costs recorded in this window"]
    rows = [(line.name, line.tally) for line in summary.lines[:top]]
    width = max(len("total"), *(len(name) for name, _ in rows))
    lines += ["", f"{'':<{width}}  {'cost':>12}  {'jobs':>7}  {'vCPU-h':>9}  {'GPU-h':>8}"]
    lines += [_row(name, tally, width) for name, tally in rows]
    hidden = len(summary.lines) - len(rows)
    if hidden:
        lines.append(f"… {hidden} more (--top {len(summary.lines)} shows all)")
    lines.append(_row("total", summary.total, width))
    if summary.total.unpriced_jobs:
        lines.append(f"{summary.total.unpriced_jobs:,} jobs ran on queues without prices: their hours, not dollars")
    return lines


def _row(name: str, tally: Tally, width: int) -> str:
    cost = money_words(tally.usd) if tally.jobs > tally.unpriced_jobs else "unknown"
    return f"{name:<{width}}  {cost:>12}  {tally.jobs:>7,}  {tally.vcpu_hours:>9,.1f}  {tally.gpu_hours:>8,.1f}" + (
        f"  (+{tally.unpriced_jobs:,} unpriced)" if tally.unpriced_jobs and tally.jobs > tally.unpriced_jobs else ""
    )
