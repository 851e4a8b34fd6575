"""The platform config (docs/spec.md): queues, teams and routes, checked when loaded.

The platform team owns this document. Its invariants are checked here when it
loads, so a bad edit fails loudly at the first function start rather than by
sending a GPU job to a CPU queue; `planning` checks them again on every route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from batchdrop.errors import ConfigInvalid, InvalidInput
from batchdrop.spec.documents import format_for, load_document
from batchdrop.spec.explain import describe_pattern, problems_from_validation_error
from batchdrop.spec.model import Alias, Environment, Finding, Hardware, Name

JobQueueArn = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^arn:aws[a-z-]*:batch:[a-z0-9-]+:[0-9]{12}:job-queue/[A-Za-z0-9_-]{1,128}$",
            "must be a job queue ARN, arn:aws:batch:<region>:<account>:job-queue/<name>",
        )
    ),
]
JobDefinitionArn = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^arn:aws[a-z-]*:batch:[a-z0-9-]+:[0-9]{12}:job-definition/[A-Za-z0-9_-]{1,128}(:[0-9]+)?$",
            "must be a job definition ARN, arn:aws:batch:<region>:<account>:job-definition/<name>:<revision>",
        )
    ),
]
ShareIdentifier = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(r"^[A-Za-z0-9_]{1,255}$", "must be letters, digits and `_` (a Batch share identifier)")
    ),
]


_QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/cpu"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True)


UsdPerHour = Annotated[float, Field(ge=0)]
Usd = Annotated[float, Field(ge=0)]


class QueuePrice(_Strict):
    """What an hour of each resource costs on a queue, in US dollars: the platform team's estimate (its
    instances' price split over their vCPUs, memory and GPUs), not a bill. Costs in dollars are made of it."""

    vcpu_hour: UsdPerHour = Field(
        default=0.0, description="USD per vCPU-hour requested, at least 0 (default 0).", examples=[0.034]
    )
    gib_hour: UsdPerHour = Field(
        default=0.0, description="USD per GiB-hour of memory requested, at least 0 (default 0).", examples=[0.0045]
    )
    gpu_hour: UsdPerHour = Field(
        default=0.0,
        description="USD per GPU-hour requested, at least 0 (default 0); a gpu queue's price must give it.",
        examples=[3.06],
    )


class QueueConfig(_Strict):
    """A Batch job queue jobs may be routed to, and the largest job it can ever run."""

    arn: JobQueueArn = Field(
        description="The job queue's ARN. Required.",
        examples=["arn:aws:batch:us-east-1:123456789012:job-queue/gpu-shared"],
    )
    hardware: Hardware = Field(
        description="cpu or gpu: a job with GPUs is routed only to a gpu queue, one without never. Required.",
        examples=["gpu"],
    )
    max_vcpus: Annotated[
        float,
        Field(
            gt=0,
            description="vCPUs of the queue's largest instance: a job asking for more is refused. Required.",
            examples=[64],
        ),
    ]
    max_memory_mib: Annotated[
        int,
        Field(
            ge=128,
            description="Memory of the queue's largest instance in MiB, at least 128: a job asking for more is "
            "refused. Required.",
            examples=[249856],
        ),
    ]
    max_gpus: Annotated[
        int,
        Field(
            ge=0,
            description="GPUs of the queue's largest instance (default 0): 1 or more on a gpu queue, 0 on a cpu one.",
            examples=[4],
        ),
    ] = 0
    fair_share: bool = Field(
        default=False,
        description="true if the queue has a fair-share scheduling policy: its jobs then carry the team's "
        "`share_identifier` and a scheduling priority. Default false.",
        examples=[True],
    )
    capacity: Literal["spot", "on_demand"] | None = Field(
        default=None,
        description="spot or on_demand: the capacity of the queue's compute environments. A route's `fallback` "
        "must be on_demand. Default: not said.",
        examples=["spot"],
    )
    max_environment_vcpus: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="vCPUs the queue's compute environments run at once at most (their maxvCpus): a multi-node "
        "job's nodes × vCPUs must fit in them. Default: not checked.",
        examples=[384],
    )
    price: QueuePrice | None = Field(
        default=None,
        description="Estimated unit prices in US dollars: `{vcpu_hour, gib_hour, gpu_hour}` per hour of each "
        "resource a job requests (a spot queue's are lower). A job's cost is its vCPU-, GiB- and GPU-hours × "
        "these. Default: none (its jobs' cost is not told).",
        examples=[{"vcpu_hour": 0.012, "gib_hour": 0.0016, "gpu_hour": 1.0}],
    )


class BudgetConfig(_Strict):
    """What a team may spend, checked before its runs are submitted (docs/budgets.md)."""

    per_run_usd: Usd | None = Field(
        default=None,
        description="The most one run may cost at worst, in US dollars: a run whose worst case is more is "
        "rejected (`over_run_budget`). Default: no limit.",
        examples=[500],
    )
    monthly_usd: Usd | None = Field(
        default=None,
        description="What the team may spend in a calendar month (UTC), in US dollars: a run whose worst case is "
        "more than what is left is rejected (`over_monthly_budget`). Default: no limit.",
        examples=[20000],
    )
    warn_at: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.8,
        description="The share of `monthly_usd` at which the team is warned (`team.budget`): more than 0, at "
        "most 1 (default 0.8).",
        examples=[0.8],
    )


class PlatformDefaults(_Strict):
    """What a spec gets when it does not say."""

    timeout_minutes: Annotated[int, Field(ge=1, le=14 * 24 * 60)] | None = Field(
        default=None,
        description="The timeout of a step that gives no `timeout_minutes`: 1 to 20,160 minutes. It is put in "
        "the step's SubmitJob request. Default: none (the job definition's, if it has one).",
        examples=[1440],
    )


class TeamConfig(_Strict):
    """A team: what its specs may run, and how."""

    job_definitions: Annotated[dict[Alias, JobDefinitionArn], Field(min_length=1)] = Field(
        description="The job definitions the team's specs may name: alias → job definition ARN, at least one. "
        "Required.",
        examples=[{"trainer": "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3"}],
    )
    multinode_job_definitions: list[Alias] = Field(
        default=[],
        description="Which of `job_definitions` are multi-node parallel ones (docs/multinode.md): a spec with "
        "`nodes` must name one, a spec without must not. Default: none.",
        examples=[["ddp"]],
    )
    environments: Annotated[list[Environment], Field(min_length=1)] = Field(
        default=["adhoc"],
        description="The environments the team's specs may ask for: adhoc, production (default [adhoc]).",
        examples=[["adhoc", "production"]],
    )
    share_identifier: ShareIdentifier | None = Field(
        default=None,
        description="The team's share on fair-share queues; required if a route can send its jobs to one.",
        examples=["vision"],
    )
    default_priority: Annotated[int, Field(ge=0, le=9999)] = Field(
        default=0,
        description="The scheduling priority of the team's jobs on fair-share queues when a spec gives no "
        "`priority`: 0 to 9999 (default 0).",
        examples=[50],
    )
    slack_channel: (
        Annotated[
            str,
            StringConstraints(
                pattern=describe_pattern(
                    r"^#?[a-z0-9._-]{1,80}$",
                    "must be a Slack channel name such as `#vision-ml`: lower-case letters, digits, `.`, `_` and `-`",
                )
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="The team's Slack channel, where its notifications go (docs/notifications.md). Default: none.",
        examples=["#vision-ml"],
    )
    budget: BudgetConfig | None = Field(
        default=None,
        description="What the team may spend: `{per_run_usd, monthly_usd, warn_at}` (docs/budgets.md). A team "
        "with a budget needs a timeout on every step (its own or `defaults.timeout_minutes`). Default: none.",
        examples=[{"per_run_usd": 500, "monthly_usd": 20000, "warn_at": 0.8}],
    )
    require_timeout: bool = Field(
        default=False,
        description="true: a step of the team's without a timeout (its own or `defaults.timeout_minutes`) is "
        "rejected (`timeout_required`). Default false (true in effect when the team has a budget).",
        examples=[True],
    )

    @property
    def needs_timeouts(self) -> bool:
        """A step without a timeout cannot be bounded: a budgeted team's is refused like a required one's."""
        return self.require_timeout or self.budget is not None


class RouteWhen(_Strict):
    """Which jobs a route takes: each field given must match; one left out matches any."""

    team: Name | None = Field(
        default=None, description="Only this team's jobs. Default: any team.", examples=["vision"]
    )
    environment: Environment | None = Field(
        default=None, description="Only jobs of this environment. Default: any.", examples=["production"]
    )
    hardware: Hardware | None = Field(
        default=None,
        description="cpu or gpu, and the queue's own: a route must say it, so jobs of the other kind never match.",
        examples=["gpu"],
    )

    def matches(self, team: str, environment: str, hardware: str) -> bool:
        return (
            self.team in (None, team) and self.environment in (None, environment) and self.hardware in (None, hardware)
        )


class Route(_Strict):
    """One routing rule: jobs that match `when` go to `queue`."""

    when: RouteWhen = Field(
        default_factory=RouteWhen,
        description="Which jobs the route takes (team, environment, hardware). Default: any job.",
        examples=[{"team": "vision", "environment": "production", "hardware": "gpu"}],
    )
    queue: Name = Field(description="The queue, by its name under `queues`. Required.", examples=["gpu-vision-prod"])
    fallback: Name | None = Field(
        default=None,
        description="An on-demand queue of the same hardware where a job reclaimed too often on `queue` is "
        "resubmitted (a spec's `retries.spot_fallback`). Default: none.",
        examples=["gpu-on-demand"],
    )


class PlatformConfig(_Strict):
    """The platform config, version 1."""

    version: Annotated[int, Field(ge=1, le=1, description="The format's version: always 1. Required.", examples=[1])]
    queues: Annotated[dict[Name, QueueConfig], Field(min_length=1)] = Field(
        description="The job queues batchdrop may submit to: name → queue, at least one. Required.",
        examples=[{"cpu": {"arn": _QUEUE_ARN, "hardware": "cpu", "max_vcpus": 96, "max_memory_mib": 393216}}],
    )
    teams: Annotated[dict[Name, TeamConfig], Field(min_length=1)] = Field(
        description="The teams that may drop specs, by the name of their folder under incoming/: at least one. "
        "Required.",
        examples=[
            {
                "forecasting": {
                    "job_definitions": {"triage": "arn:aws:batch:us-east-1:123456789012:job-definition/triage:7"}
                }
            }
        ],
    )
    routes: Annotated[list[Route], Field(min_length=1)] = Field(
        description="Routing rules in order, at least one: a job goes to the queue of the first that matches it.",
        examples=[[{"when": {"hardware": "cpu"}, "queue": "cpu-shared"}]],
    )
    defaults: PlatformDefaults = Field(
        default_factory=PlatformDefaults,
        description="What a spec gets when it does not say: `{timeout_minutes}`. Default: nothing.",
        examples=[{"timeout_minutes": 1440}],
    )

    def reachable_queues(self, team: str) -> list[str]:
        """The queues some route can send this team's jobs to."""
        return [route.queue for route in self.routes if route.when.team in (None, team)]


def check_platform_config(config: PlatformConfig) -> list[Finding]:
    """The invariants of docs/spec.md that span fields."""
    findings: list[Finding] = []
    for name, declared in config.queues.items():
        if declared.hardware == "gpu" and declared.max_gpus < 1:
            findings.append(
                (("queues", name, "max_gpus"), "gpu_queue_without_gpus", "a gpu queue needs max_gpus of 1 or more")
            )
        if declared.hardware == "cpu" and declared.max_gpus > 0:
            findings.append(
                (("queues", name, "max_gpus"), "cpu_queue_with_gpus", "a cpu queue cannot offer GPUs (max_gpus: 0)")
            )
        if declared.hardware == "gpu" and declared.price is not None and declared.price.gpu_hour == 0:
            findings.append(
                (
                    ("queues", name, "price", "gpu_hour"),
                    "gpu_queue_without_gpu_price",
                    "a gpu queue's price needs `gpu_hour` (USD per GPU-hour), or its GPU jobs would cost nothing",
                )
            )
    for index, route in enumerate(config.routes):
        queue = config.queues.get(route.queue)
        if queue is None:
            findings.append(
                (
                    ("routes", index, "queue"),
                    "unknown_queue",
                    f"there is no queue `{route.queue}` (queues: {', '.join(config.queues)})",
                )
            )
            continue
        if route.when.team is not None and route.when.team not in config.teams:
            findings.append(
                (("routes", index, "when", "team"), "unknown_team", f"there is no team `{route.when.team}`")
            )
        wanted = route.when.hardware
        if wanted is None:
            findings.append(
                (
                    ("routes", index, "when"),
                    "route_without_hardware",
                    f"this route sends any job to {queue.hardware} queue `{route.queue}`; "
                    f"say `hardware: {queue.hardware}` so jobs of the other kind never match it",
                )
            )
        elif wanted != queue.hardware:
            findings.append(
                (
                    ("routes", index, "queue"),
                    "hardware_mismatch",
                    f"this route takes {wanted} jobs but `{route.queue}` is a {queue.hardware} queue",
                )
            )
        if route.fallback is not None:
            findings.extend(_fallback_findings(config, index, route.fallback, queue))
    for team_name, team in config.teams.items():
        findings.extend(_budget_findings(config, team_name, team))
        findings.extend(
            (("teams", team_name, "multinode_job_definitions", i), "unknown_job_definition", f"no alias `{alias}`")
            for i, alias in enumerate(team.multinode_job_definitions)
            if alias not in team.job_definitions
        )
        if team.share_identifier is None:
            fair = [q for q in config.reachable_queues(team_name) if q in config.queues and config.queues[q].fair_share]
            if fair:
                findings.append(
                    (
                        ("teams", team_name),
                        "missing_share_identifier",
                        f"team `{team_name}` can reach fair-share queue `{fair[0]}`, so it needs a `share_identifier`",
                    )
                )
    return findings


def _budget_findings(config: PlatformConfig, team_name: str, team: TeamConfig) -> list[Finding]:
    """A budget is checked in dollars: every queue the team can reach needs prices, or its jobs would be
    counted as free."""
    if team.budget is None:
        return []
    findings: list[Finding] = []
    if team.budget.per_run_usd is None and team.budget.monthly_usd is None:
        findings.append(
            (
                ("teams", team_name, "budget"),
                "empty_budget",
                f"team `{team_name}`'s budget gives neither `per_run_usd` nor `monthly_usd`",
            )
        )
    reachable = [name for name in config.reachable_queues(team_name) if name in config.queues]
    fallbacks = [r.fallback for r in config.routes if r.when.team in (None, team_name) and r.fallback]
    unpriced = [
        name for name in dict.fromkeys(reachable + fallbacks) if name in config.queues and not config.queues[name].price
    ]
    if unpriced:
        findings.append(
            (
                ("teams", team_name, "budget"),
                "budget_without_prices",
                f"team `{team_name}` has a budget but can reach queue `{unpriced[0]}`, which has no `price`: "
                "give every queue the team can reach its prices",
            )
        )
    return findings


def _fallback_findings(config: PlatformConfig, index: int, name: str, queue: QueueConfig) -> list[Finding]:
    """A fallback keeps the route's hardware (a GPU job never lands on a CPU queue by falling back) and is
    on-demand capacity (falling back to spot would be reclaimed again)."""
    where = ("routes", index, "fallback")
    fallback = config.queues.get(name)
    if fallback is None:
        return [(where, "unknown_queue", f"there is no queue `{name}` (queues: {', '.join(config.queues)})")]
    if fallback.hardware != queue.hardware:
        return [
            (
                where,
                "hardware_mismatch",
                f"fallback `{name}` is a {fallback.hardware} queue but the route's queue is a {queue.hardware} one",
            )
        ]
    if fallback.capacity != "on_demand":
        return [(where, "fallback_not_on_demand", f"fallback `{name}` must say `capacity: on_demand`")]
    return []


def parse_platform_config(raw: bytes, name: str = "platform.yaml") -> PlatformConfig:
    """Read and check a platform config; raise `ConfigInvalid` with every problem."""
    try:
        document = load_document(raw, format_for(name) or "yaml")
    except InvalidInput as exc:
        raise ConfigInvalid(exc.problems) from exc
    try:
        config = PlatformConfig.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigInvalid(problems_from_validation_error(exc, document, PlatformConfig)) from exc
    findings = check_platform_config(config)
    if findings:
        raise ConfigInvalid([document.problem(*finding) for finding in findings])
    return config
