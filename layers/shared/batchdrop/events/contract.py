"""The events batchdrop publishes on its SNS topic (docs/notifications.md): `batchdrop.event/v1`.

Every message is one JSON object with `"schema": "batchdrop.event/v1"` and a
`type`; each type has its model here, and `docs/events/` holds their JSON
Schemas. Message attributes `team`, `type`, `status` and `environment` let a
subscriber filter without reading the body. `event_id` is the same for the
same fact, so a subscriber can drop the duplicates that at-least-once delivery
brings.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from batchdrop.errors import Problem
from batchdrop.limits import EVENT_BYTES, PROBLEM_MESSAGE_CHARS

EVENT_SCHEMA: Literal["batchdrop.event/v1"] = "batchdrop.event/v1"
MAX_EVENT_PROBLEMS = 20
"""A rejection event carries this many problems; the receipt has them all."""


def event_id(*facts: object) -> str:
    return hashlib.sha256("\0".join(str(fact) for fact in facts).encode()).hexdigest()[:32]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True, populate_by_name=True)

    schema_: Literal["batchdrop.event/v1"] = Field(default=EVENT_SCHEMA, alias="schema")
    event_id: str = Field(description="The same for the same fact: use it to drop duplicates.")
    time: datetime
    team: str
    environment: str | None = None
    run_id: str
    spec_name: str | None = None
    source_uri: str = Field(description="The spec file, s3://bucket/incoming/<team>/...")
    status: str
    previous_status: str | None = None
    reason: str | None = None
    truncated: bool | None = Field(
        default=None, description="True when lists or words were shortened to keep the event within its size."
    )

    def attributes(self) -> dict[str, str]:
        """The SNS message attributes subscribers filter on."""
        return {
            "team": self.team,
            "type": self.type,  # type: ignore[attr-defined]  # every concrete event has one
            "status": self.status,
            "environment": self.environment or "unknown",
        }

    def body(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class EventJob(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    step: str
    job_id: str
    job_name: str
    queue: str
    hardware: Literal["cpu", "gpu"]
    array_size: int | None = None
    depends_on: list[str] = []


DROPPED_BY = "Who uploaded the spec file (the S3 notification's principal id), when S3 named them."


class RunSubmitted(_Event):
    type: Literal["run.submitted"] = "run.submitted"
    status: Literal["submitted"] = "submitted"
    jobs: list[EventJob]
    receipt_uri: str
    notify_on: list[str] = []
    warnings: list[str] = []
    dropped_by: str | None = Field(default=None, description=DROPPED_BY)


class RunRejected(_Event):
    type: Literal["run.rejected"] = "run.rejected"
    status: Literal["rejected"] = "rejected"
    problems: list[Problem] = Field(description=f"The first {MAX_EVENT_PROBLEMS}; the receipt lists every one.")
    problem_count: int
    receipt_uri: str | None = None
    dropped_by: str | None = Field(default=None, description=DROPPED_BY)


FailureClass = Literal[
    "spot_reclaim",
    "out_of_memory",
    "non_zero_exit",
    "image_pull",
    "timeout",
    "cancelled",
    "dependency",
    "lost",
    "unknown",
]


class LogLink(BaseModel):
    """One attempt's CloudWatch log stream, and where to read it in the console."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    attempt: int
    container: str | None = None
    """For multi-container jobs: which container wrote it."""
    log_group: str
    log_stream: str
    url: str


MAX_TOLD_NODES = 10
"""A multi-node job's failed nodes an event describes one by one at most (the counts are whole)."""


class NodeTold(BaseModel):
    """How one node of a multi-node parallel job ended (its last attempt)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    node: int = Field(description="The node's index; node 0 is the main node.")
    status: Literal["succeeded", "failed"]
    attempt: int = Field(description="From 1.")
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    failure: str | None = Field(default=None, description="The node's failure in plain words.")
    log_url: str | None = Field(default=None, description="The node's CloudWatch log stream in the console.")


class NodesTold(BaseModel):
    """A multi-node parallel job's nodes: how many ended how, and which failed."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    count: int = Field(description="The job's nodes.")
    succeeded: int = Field(description="Nodes whose end is known and succeeded.")
    failed: int = Field(description="Nodes whose end is known and failed.")
    failed_nodes: list[NodeTold] = Field(
        default=[], description=f"The failed nodes, lowest index first (the first {MAX_TOLD_NODES})."
    )
    words: str = Field(
        description="All of it in a line, as Slack and `batchdrop status` say it.",
        examples=["4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory"],
    )


class Usage(BaseModel):
    """Requested resources × run time, summed over attempts (and children, for an array)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    vcpu_hours: float = 0.0
    gpu_hours: float = 0.0
    memory_gib_hours: float = 0.0


class AttemptTold(BaseModel):
    """How one earlier (or the last) attempt of a job ended."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    attempt: int = Field(description="From 1.")
    node: int | None = Field(default=None, description="For a multi-node job: the node whose attempt this was.")
    failure_class: FailureClass | None = Field(default=None, description="None for an attempt that succeeded.")
    failure: str | None = None
    exit_code: int | None = None
    reason: str | None = Field(default=None, description="Batch's words for how the attempt ended.")
    duration_seconds: float | None = None


RecoveryKind = Literal["out_of_memory", "spot_fallback"]


class RecoveryTold(BaseModel):
    """A new job batchdrop submitted (or is submitting) in place of a failed one (docs/recovery.md)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    number: int = Field(description="The step's recovery number: 1 for its first new job (its name ends `-r1`).")
    kind: RecoveryKind = Field(
        description="out_of_memory: the same queue with more memory; spot_fallback: the route's on-demand queue."
    )
    words: str = Field(
        description="In plain words, with its numbers: 'ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)'."
    )
    job_id: str = Field(description="The job that failed and is replaced.")
    memory_mib: int = Field(description="Memory the new job asks for.")
    queue: str = Field(description="The queue the new job is submitted to.")


def failure_told(failure: str | None, recovery_final: str | None) -> str | None:
    """A failure's words as events tell them: with why it was not recovered (in numbers), when its spec
    asked for a recovery that could not be made."""
    if recovery_final is None:
        return failure
    return f"{failure} — {recovery_final}" if failure else recovery_final


class RunStep(BaseModel):
    """One step of a run as it ended: what `run.ended` tells, and what the run record keeps for it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    step: str
    job_id: str
    status: str = Field(description="The step's final status: succeeded, failed or lost.")
    queue: str
    hardware: Literal["cpu", "gpu"]
    array_size: int | None = None
    attempts: int = Field(default=0, description="Attempts made.")
    ended_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, description="Time spent running, over every attempt.")
    children: dict[str, int] | None = Field(default=None, description="For an array: children by final status.")
    usage: Usage | None = None
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    failure: str | None = Field(default=None, description="For a step that failed: why, in plain words.")
    recoveries: list[RecoveryTold] | None = Field(
        default=None,
        description="The new jobs batchdrop submitted for this step after failures, oldest first; `job_id` is "
        "the step's last job.",
    )
    story: str | None = Field(
        default=None,
        description="For a step that was recovered: its whole chain on one line, e.g. 'attempt 1: out of memory "
        "at 16 GiB → recovery 1 with 32 GiB → succeeded'.",
    )
    reused_from: str | None = Field(
        default=None,
        description="For a step a resumed run reused: the run whose job (`job_id`) it is; its usage is counted "
        "there, not in this run's.",
    )


class _JobEvent(_Event):
    job_id: str
    job_name: str
    step: str
    queue: str
    hardware: Literal["cpu", "gpu"]
    console_url: str
    attempts: int = Field(
        default=0,
        description="While the job has not ended: the number of the attempt in progress; once it has: attempts made.",
    )
    array_size: int | None = None
    receipt_uri: str | None = None
    children: dict[str, int] | None = Field(
        default=None, description="For an array job: how many children ended in each status."
    )
    notify_on: list[str] = Field(
        default=[], description="The statuses the spec asked to hear about (lower case); failures are always told."
    )
    step_count: int | None = Field(
        default=None, description="How many steps the job's run has: more than one makes it a pipeline."
    )


class JobStatusChanged(_JobEvent):
    """A job reached a status its spec asked to hear about (failures always)."""

    type: Literal["job.status"] = "job.status"
    status: Literal["pending", "runnable", "starting", "running", "succeeded", "failed", "lost"] = Field(
        description="Batch's status, in lower case like every status of this contract."
    )
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    failure: str | None = Field(default=None, description="The failure in plain words, e.g. 'out of memory'.")
    log_links: list[LogLink] = []
    attempt_history: list[AttemptTold] | None = Field(
        default=None, description="Every attempt that has ended, oldest first (a retried job's earlier fates)."
    )
    duration_seconds: float | None = Field(default=None, description="Once the job has ended: time spent running.")
    usage: Usage | None = None
    cost_usd: float | None = Field(
        default=None,
        description="Once the job has ended, on a queue the platform config prices: its estimated cost in US "
        "dollars (`usage` × the queue's unit prices; an array's children summed; to a hundredth of a cent).",
    )
    recovering: bool | None = Field(
        default=None,
        description="On a failure: true when batchdrop is replacing the job with a new one (a `job.recovering` "
        "event tells how).",
    )
    nodes: NodesTold | None = Field(
        default=None,
        description="For a multi-node parallel job: its nodes' ends as known when this was told (a node's end "
        "heard after the job's own is kept, but not told again).",
    )

    def attributes(self) -> dict[str, str]:
        """A failure being recovered says so, so a subscriber can hear only of final failures
        (`"recovering": [{"exists": false}]`)."""
        return {**super().attributes(), "recovering": "true"} if self.recovering else super().attributes()


class JobRecovering(_JobEvent):
    """A job failed in a way its spec asked batchdrop to recover from: a new job is being submitted in its
    place (more memory, or the route's on-demand queue). Told once per recovery."""

    type: Literal["job.recovering"] = "job.recovering"
    status: Literal["recovering"] = "recovering"
    exit_code: int | None = None
    failure_class: FailureClass | None = Field(default=None, description="Why the job failed.")
    failure: str | None = None
    attempt_history: list[AttemptTold] | None = Field(default=None, description="Every attempt of the failed job.")
    log_links: list[LogLink] = []
    memory_mib: int = Field(description="Memory the failed job asked for.")
    recovery: RecoveryTold
    number_of: int = Field(
        description="How many recoveries of this kind the spec allows (`retries.out_of_memory.times`; one fallback)."
    )


class JobStuck(_JobEvent):
    """A job has sat RUNNABLE too long, or Batch said its queue is blocked."""

    type: Literal["job.stuck"] = "job.stuck"
    status: Literal["runnable"] = "runnable"
    runnable_seconds: float
    advice: str = Field(description="What to do about it, in plain words.")


RunEndStatus = Literal["succeeded", "failed", "cancelled"]
RUN_ENDED: frozenset[str] = frozenset(get_args(RunEndStatus))
"""A run in one of these has ended (its jobs have): `run.ended` tells it."""


class RunEnded(_Event):
    """A run ended: every step has, and this is how each went."""

    type: Literal["run.ended"] = "run.ended"
    status: RunEndStatus
    steps: list[RunStep] = Field(description="Each step in the spec's order (shortened only to fit the event).")
    step_count: int = Field(description="How many steps the run has (all of them, even if `steps` was shortened).")
    duration_seconds: float | None = Field(default=None, description="From submission to the end of the last step.")
    usage: Usage | None = Field(default=None, description="What every step used, together.")
    cost_usd: float | None = Field(
        default=None,
        description="What that cost in US dollars, estimated from the prices of its queues (none without prices).",
    )
    dropped_by: str | None = Field(default=None, description=DROPPED_BY)
    receipt_uri: str | None = None
    report_uri: str | None = Field(
        default=None,
        description="The run's report page (docs/report.md), written by the report function when it hears this event.",
    )
    notify_on: list[str] = Field(default=[], description="The statuses the spec asked to hear about (lower case).")


BudgetCrossing = Literal["warning", "exceeded"]


class TeamBudget(_Event):
    """A team's month crossed `warn_at` × its monthly budget (`warning`) or the budget itself (`exceeded`):
    each told once per team and month (docs/budgets.md). The run is the one whose job's cost crossed it."""

    type: Literal["team.budget"] = "team.budget"
    status: BudgetCrossing
    month: str = Field(description="The calendar month (UTC), `yyyy-mm`.", examples=["2026-11"])
    spent_usd: float = Field(description="The team's month in US dollars when it crossed (jobs ended so far).")
    monthly_usd: float = Field(description="The team's monthly budget in US dollars (`budget.monthly_usd`).")
    threshold_usd: float = Field(description="What was crossed: `warn_at` × `monthly_usd`, or `monthly_usd`.")
    warn_at: float = Field(description="The team's `budget.warn_at`.")


PLATFORM_TEAM = "(platform)"
"""The `team` of an event that concerns no one team (`platform.drift`): no team's name has parentheses."""


class DriftFinding(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    subject: Literal["queue", "job definition"]
    name: str = Field(description="The queue's name, or the job definition's `team/alias`.")
    check: str = Field(description="What was compared (docs/platform-check.md).", examples=["max_memory_mib"])
    severity: Literal["warning", "error"]
    detail: str = Field(description="What the config says and what the account has, in words.")


class PlatformDrift(_Event):
    """The daily platform check found the platform config and the account disagreeing (docs/platform-check.md),
    told once a day they do. It concerns no one team: `team` is `(platform)`, `run_id` empty, `source_uri` the
    config's location; `status` is the worst finding's severity."""

    type: Literal["platform.drift"] = "platform.drift"
    status: Literal["warning", "error"]
    day: str = Field(description="The day checked (UTC), `yyyy-mm-dd`.", examples=["2026-11-30"])
    error_count: int = Field(description="Findings that are errors: jobs would sit RUNNABLE or be refused by Batch.")
    warning_count: int = Field(description="Findings that are warnings: jobs refused that would have run.")
    findings: list[DriftFinding] = Field(description="What disagrees (at most 100).")
    finding_count: int = Field(description="How many findings there were, all told.")


BatchdropEvent = Annotated[
    RunSubmitted | RunRejected | RunEnded | JobStatusChanged | JobRecovering | JobStuck | TeamBudget | PlatformDrift,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(BatchdropEvent, config=ConfigDict(defer_build=True))
"""Built on first use: the submit and track functions never read an event."""


_SHORTENED_LISTS = ("problems", "jobs", "warnings", "log_links", "attempt_history", "steps", "findings")
_SHORTENED_WORDS = ("reason", "failure", "advice")


def fit[EventT: _Event](event: EventT) -> EventT:
    """The event within `EVENT_BYTES`: long words cut, then lists halved until it fits (counts such as
    `problem_count` stay whole, and `truncated` says so). A 200 KB value in a spec never makes an event
    SNS refuses, nor one that takes its whole batch down with it."""
    if len(event.body().encode()) <= EVENT_BYTES:
        return event
    update: dict[str, Any] = {"truncated": True}
    for name in _SHORTENED_WORDS:
        value = getattr(event, name, None)
        if isinstance(value, str) and len(value) > PROBLEM_MESSAGE_CHARS:
            update[name] = value[: PROBLEM_MESSAGE_CHARS - 1] + "…"
    event = event.model_copy(update=update)
    for name in _SHORTENED_LISTS:
        while len(event.body().encode()) > EVENT_BYTES and getattr(event, name, None):
            items = getattr(event, name)
            event = event.model_copy(update={name: items[: len(items) // 2]})
    return event
