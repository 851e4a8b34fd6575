"""TeamCosts: each team's cost per month, one item kept up to date as jobs end, so a month of a team is one read.

Layout (docs/architecture.md, docs/costs.md): PK `COST#<team>`, SK `MONTH#<yyyy-mm>` (the month, UTC, the
job ended in). Its numbers are top-level attributes, because DynamoDB's ADD takes top-level attributes
only: the month's totals (`usd`, `jobs`, `unpriced_jobs`, `vcpu_hours`, `memory_gib_hours`, `gpu_hours`)
and the same per queue and per spec (`queue/<name>/usd`, `spec/<name>/jobs`, ...). A figure that is 0 is
not added, so an item holds only what its month saw.

Exactly once: a job's cost is added in one TransactWriteItems with a marker on the job's own record
(`cost_counted`, set only if absent and only on a finished job). A second count of the same job (its end
applied twice, two instances, botocore re-sending a transaction whose answer was lost) fails the marker's
condition and adds nothing.

The month as it stands (docs/budgets.md): each count is followed by one strongly consistent read of the
month (its total and budget markers; the dashboard's month against the budget). For a team with a monthly
budget, a level the read finds reached and unmarked is then set by a conditional update (`budget_warned`
once the total reaches `warn_at` × the budget, `budget_exceeded` once it reaches the budget, each only if
absent): once per team-month, and no write at all while a level is unreached or marked already. The publish
function tells the change as `team.budget` (the records table's stream is the outbox). Tracking reads after
every count, and after a count refused as made before (`track.costs`): a marker that could not be set after
its count (the function died between) is set by the same end delivered again, or by the month's next count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.events.contract import Usage
from batchdrop.platform.config import BudgetConfig
from batchdrop.platform.costs import usage_cost
from batchdrop.store.items import batch_get, deserialize, error_code, job_key, serialize
from batchdrop.store.records import TERMINAL, JobRecord, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

COST_RETENTION = timedelta(days=400)
"""How long a month's costs are kept after the month began: a year back, and the month a year ago."""
BREAKDOWNS = ("queue", "spec")
"""What a month's cost is also kept by: its jobs' queues and their specs' names."""
FIGURES = ("usd", "jobs", "unpriced_jobs", "vcpu_hours", "memory_gib_hours", "gpu_hours")
BUDGET_MARKERS = {"warning": "budget_warned", "exceeded": "budget_exceeded"}
"""A team-month's marker of each budget crossing, set once (told as `team.budget`)."""
SEPARATOR = "/"
"""Between a breakdown, its name and a figure: `queue/gpu-spot/usd` (no queue or spec name holds a `/`)."""


def month_of(at: datetime) -> str:
    """'2026-11': the month (UTC) a cost belongs to."""
    return f"{at.year:04d}-{at.month:02d}"


def cost_key(team: str, month: str) -> dict[str, Any]:
    return {"PK": {"S": f"COST#{team}"}, "SK": {"S": f"MONTH#{month}"}}


@dataclass(frozen=True)
class JobCost:
    """What one ended job adds to its team's month."""

    job_id: str
    team: str
    month: str
    queue: str
    spec_name: str
    usage: Usage
    usd: float | None
    """None: its queue has no prices (the job's hours are counted, its dollars are not)."""
    run_id: str = ""
    source_uri: str = ""
    """The job's run and spec file: a budget crossing names the run whose job crossed it."""

    @classmethod
    def of(cls, job: JobRecord, usage: Usage | None = None) -> JobCost:
        """A finished job's cost: its usage (an array's: its children's, given as merged) × its prices."""
        used = usage or job.told_usage or Usage()
        ended = job.finished_at or job.last_event_at
        return cls(
            job_id=job.job_id,
            team=job.team,
            month=month_of(ended),
            queue=job.queue,
            spec_name=job.spec_name,
            usage=used,
            usd=usage_cost(used, job.price) if job.price is not None else None,
            run_id=job.run_id,
            source_uri=job.source.uri,
        )

    def figures(self) -> dict[str, float]:
        """What it adds to each total it is part of (figures that are 0 left out)."""
        added = {
            "usd": self.usd or 0.0,
            "jobs": 1,
            "unpriced_jobs": 1 if self.usd is None else 0,
            "vcpu_hours": self.usage.vcpu_hours,
            "memory_gib_hours": self.usage.memory_gib_hours,
            "gpu_hours": self.usage.gpu_hours,
        }
        return {name: value for name, value in added.items() if value}


@dataclass(frozen=True)
class Tally:
    """A sum of jobs' costs: dollars of the priced ones, hours of all."""

    usd: float = 0.0
    jobs: int = 0
    unpriced_jobs: int = 0
    """Jobs on queues without prices: their hours are counted, their dollars are not in `usd`."""
    vcpu_hours: float = 0.0
    memory_gib_hours: float = 0.0
    gpu_hours: float = 0.0

    def plus(self, other: Tally) -> Tally:
        return Tally(**{name: getattr(self, name) + getattr(other, name) for name in FIGURES})


@dataclass(frozen=True)
class MonthCost:
    """One team's month, as kept."""

    team: str
    month: str
    total: Tally = field(default_factory=Tally)
    by: dict[str, dict[str, Tally]] = field(default_factory=dict)
    """`queue` and `spec`: each name's tally."""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> MonthCost:
        plain = deserialize(item)
        totals: dict[str, float] = {name: plain[name] for name in FIGURES if name in plain}
        parts: dict[str, dict[str, dict[str, float]]] = {breakdown: {} for breakdown in BREAKDOWNS}
        for attribute, value in plain.items():
            breakdown, _, rest = str(attribute).partition(SEPARATOR)
            name, _, figure = rest.rpartition(SEPARATOR)
            if breakdown in parts and name and figure in FIGURES:
                parts[breakdown].setdefault(name, {})[figure] = value
        return cls(
            team=str(plain["team"]),
            month=str(plain["month"]),
            total=_tally(totals),
            by={
                breakdown: {name: _tally(figures) for name, figures in named.items()}
                for breakdown, named in parts.items()
            },
        )


def _tally(figures: dict[str, float]) -> Tally:
    return Tally(
        usd=float(figures.get("usd", 0.0)),
        jobs=int(figures.get("jobs", 0)),
        unpriced_jobs=int(figures.get("unpriced_jobs", 0)),
        vcpu_hours=float(figures.get("vcpu_hours", 0.0)),
        memory_gib_hours=float(figures.get("memory_gib_hours", 0.0)),
        gpu_hours=float(figures.get("gpu_hours", 0.0)),
    )


@dataclass(frozen=True)
class MonthStanding:
    """A team's month as it stands after a count: its total so far and budget (the dashboard's month against
    the budget), and the budget crossings marked by this count."""

    team: str
    month: str
    usd: float
    monthly_usd: float | None = None
    crossings: tuple[str, ...] = ()


@dataclass
class TeamCosts:
    """Each team's months: counted as jobs end (tracking), read by `batchdrop costs`."""

    client: DynamoDBClient
    table_name: str
    _: KW_ONLY
    sleep: Callable[[float], None] = time.sleep
    budgets: Callable[[str], BudgetConfig | None] | None = None
    """A team's budget (the platform config's), for its crossings; None: crossings are not marked."""
    clock: Callable[[], datetime] = utc_now

    def count(self, cost: JobCost) -> bool:
        """Add a finished job's cost to its team's month, once: False if it was counted already (or the job
        is not finished, or not recorded). One transaction: the job's marker and the month's ADDs."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds: list[str] = []
        for index, (attribute, value) in enumerate(_attributes(cost).items()):
            names[f"#a{index}"] = attribute
            values[f":a{index}"] = value
            adds.append(f"#a{index} :a{index}")
        month_start = datetime.strptime(cost.month, "%Y-%m").replace(tzinfo=UTC)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": job_key(cost.job_id),
                            "UpdateExpression": "SET cost_counted = :month",
                            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(cost_counted) "
                            "AND #status IN (" + ", ".join(f":t{index}" for index in range(len(TERMINAL))) + ")",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": serialize(
                                {":month": cost.month} | {f":t{index}": s for index, s in enumerate(sorted(TERMINAL))}
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": cost_key(cost.team, cost.month),
                            "UpdateExpression": "SET #kind = :kind, #team = :team, #month = :month, "
                            "#expires = :expires ADD " + ", ".join(adds),
                            "ExpressionAttributeNames": {
                                "#kind": "kind",
                                "#team": "team",
                                "#month": "month",
                                "#expires": "expires_at",
                            }
                            | names,
                            "ExpressionAttributeValues": serialize(
                                {
                                    ":kind": "team_month",
                                    ":team": cost.team,
                                    ":month": cost.month,
                                    ":expires": int((month_start + COST_RETENTION).timestamp()),
                                }
                                | values
                            ),
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and _marker_refused(exc):
                return False
            raise
        return True

    def standing(self, cost: JobCost) -> MonthStanding:
        """The cost's team-month as it stands after its count (one strongly consistent read: what the dashboard
        is told), with the budget levels it has reached and had not, marked now. A level is written only when
        the read finds it reached and unmarked: a month past its warning level costs a read per tracking
        batch (`track.costs` reads each team-month once), not a refused write. The write stays conditional
        (marker absent, total reached), so of two instances that read the same month, one marks it:
        `team.budget` is told once."""
        budget = self.budgets(cost.team) if self.budgets is not None else None
        monthly = budget.monthly_usd if budget is not None else None
        markers = list(BUDGET_MARKERS.values())
        found = self.client.get_item(
            TableName=self.table_name,
            Key=cost_key(cost.team, cost.month),
            ConsistentRead=True,
            ProjectionExpression=", ".join(f"#m{index}" for index in range(len(markers) + 1)),
            ExpressionAttributeNames={f"#m{index}": name for index, name in enumerate(["usd", *markers])},
        )
        item = deserialize(found.get("Item", {}))
        usd = float(item.get("usd", 0.0))
        standing = MonthStanding(team=cost.team, month=cost.month, usd=usd, monthly_usd=monthly)
        if budget is None or monthly is None:
            return standing
        marked: list[str] = []
        for crossing, threshold in (("warning", monthly * budget.warn_at), ("exceeded", monthly)):
            if BUDGET_MARKERS[crossing] in item:
                continue  # marked before (told then)
            if usd < threshold:
                break  # not reached, nor is the budget itself (at or above warn_at × it)
            if self._mark(cost, crossing, budget, threshold):
                marked.append(crossing)
        return replace(standing, crossings=tuple(marked))

    def mark_crossings(self, cost: JobCost) -> list[str]:
        """Mark the budget levels the cost's team-month has reached and had not: the crossings marked now."""
        return list(self.standing(cost).crossings)

    def _mark(self, cost: JobCost, crossing: str, budget: BudgetConfig, threshold: float) -> bool:
        """Set a crossing's marker if it is absent and the month's total has reached it: False if another
        instance (or an earlier delivery) set it first."""
        marker = BUDGET_MARKERS[crossing]
        crossed = {
            "at": self.clock().isoformat(),
            "monthly_usd": budget.monthly_usd,
            "warn_at": budget.warn_at,
            "threshold_usd": threshold,
            "run_id": cost.run_id,
            "source_uri": cost.source_uri,
            "spec_name": cost.spec_name,
        }
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=cost_key(cost.team, cost.month),
                UpdateExpression="SET #marker = :crossed, #spent = #usd",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(#marker) AND #usd >= :threshold",
                ExpressionAttributeNames={"#marker": marker, "#spent": f"{marker}_usd", "#usd": "usd"},
                ExpressionAttributeValues=serialize({":crossed": crossed, ":threshold": threshold}),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False  # marked first by another (the total never goes down, so it is not "not reached")
        return True

    def months(self, teams: Iterable[str], months: Iterable[str]) -> list[MonthCost]:
        """The months kept of these teams (one read each, 100 to a call); a month with no cost has no item."""
        keys = [cost_key(team, month) for team in dict.fromkeys(teams) for month in dict.fromkeys(months)]
        found = [MonthCost.from_item(item) for item in batch_get(self.client, self.table_name, keys, self.sleep)]
        return sorted(found, key=lambda month: (month.team, month.month))


def _attributes(cost: JobCost) -> dict[str, float]:
    """The month's attributes this cost adds to: the totals, and its queue's and its spec's."""
    figures = cost.figures()
    added = dict(figures)
    for breakdown, name in (("queue", cost.queue), ("spec", cost.spec_name)):
        added |= {SEPARATOR.join((breakdown, name, figure)): value for figure, value in figures.items()}
    return added


def _marker_refused(exc: ClientError) -> bool:
    """The transaction was cancelled because the job's marker's condition failed (counted already)."""
    reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons", [])  # type: ignore[assignment]
    if not reasons:  # some answers carry the reasons only in the message: "[ConditionalCheckFailed, None]"
        message = str(exc.response.get("Error", {}).get("Message", ""))
        return "[ConditionalCheckFailed" in message
    return reasons[0].get("Code") == "ConditionalCheckFailed"
