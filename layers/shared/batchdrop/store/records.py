"""What batchdrop remembers of every run and job (docs/architecture.md), as pydantic models.

A run is one spec file; it becomes zero (rejected) or more Batch jobs. The
table layout that stores these is `batchdrop.store.items`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from batchdrop.errors import Problem
from batchdrop.events.contract import LogLink, RunStep, Usage
from batchdrop.limits import (
    NODE_END_BYTES,
    NODE_FAILURE_CHARS,
    NODE_FAILURE_MIN_CHARS,
    RECORD_BYTES,
    SWEEP_RECORD_BYTES,
)
from batchdrop.platform.config import QueuePrice
from batchdrop.platform.recovery import RecoveryCounts, RecoveryDue, RecoveryPolicy
from batchdrop.spec.model import Resources

RunStatus = Literal["submitting", "submitted", "rejected", "running", "succeeded", "failed", "cancelled"]
FINAL_SUBMISSION_STATES: frozenset[str] = frozenset(
    {"submitted", "rejected", "running", "succeeded", "failed", "cancelled"}
)
"""A run past these has been handled by the submit function (what happens next is tracking's)."""
JobStatus = Literal["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
STATUS_RANK = {"SUBMITTED": 0, "PENDING": 1, "RUNNABLE": 2, "STARTING": 3, "RUNNING": 4, "SUCCEEDED": 5, "FAILED": 5}
"""A job's statuses in the order Batch moves it through them (a retried attempt starts again)."""
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "LOST"})
"""A job in one of these has ended: Batch's two ends, and LOST (Batch forgot a job whose end was never heard)."""
MAX_RECORDED_PROBLEMS = 100
"""A run record keeps this many problems; the receipt in S3 keeps every one."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: sorts as text in the table's indexes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def order_key(attempts: int, status: str, at: datetime) -> str:
    """Events sort by (attempts, status rank, time): a retried attempt is newer than any earlier one,
    and within an attempt a later status is newer than an earlier one. As text, for DynamoDB conditions.
    """
    return f"{attempts:03d}.{STATUS_RANK.get(status, 6)}.{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True, populate_by_name=True)


class SpecSource(_Record):
    """The S3 object a run was made from."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def console_url(self) -> str:
        return f"https://s3.console.aws.amazon.com/s3/object/{self.bucket}?prefix={quote(self.key)}"


class SubmittedJobRef(_Record):
    """A run's job, as the run record lists it."""

    step: str
    job_id: str
    job_name: str
    queue: str
    hardware: Literal["cpu", "gpu"]
    array_size: int | None = None
    depends_on: list[str] = []
    """Steps this job waits for."""
    reused_from: str | None = None
    """For a resumed run (`resume:`, `batchdrop rerun`): the run whose job this step reuses, unchanged and
    succeeded (`job_id` is that run's job, whose record stays that run's); None for a job submitted."""
    reused_children: int | None = None
    """For a resumed array or sweep submitted with only some of its children: how many children it reuses
    (succeeded, unchanged, in run `reused_children_from`); the job runs the rest."""
    reused_children_from: str | None = None

    @classmethod
    def of(cls, job: JobRecord, depends_on: list[str] | None = None) -> SubmittedJobRef:
        """A run's reference to its job; `depends_on` are step names (the record's are job ids)."""
        return cls(
            step=job.step,
            job_id=job.job_id,
            job_name=job.job_name,
            queue=job.queue,
            hardware=job.hardware,
            array_size=job.array_size,
            depends_on=depends_on or [],
        )


class RunRecord(_Record):
    run_id: str
    team: str
    status: RunStatus
    source: SpecSource
    received_at: datetime
    """When the submit function first claimed this run."""
    claim_owner: str
    """The SQS message that is (or was) submitting this run; a redelivery of it resumes the work."""
    claimed_at: datetime
    dropped_by: str | None = None
    """Who uploaded the file: the S3 notification's `userIdentity.principalId` (`AWS:<role id>:<session>`
    for an assumed role, `AWS:<user id>` for an IAM user); None where the notification named no one."""
    environment: str | None = None
    spec_name: str | None = None
    spec_digest: str | None = None
    """sha256 of the spec file's bytes."""
    notify_on: list[str] = []
    jobs: list[SubmittedJobRef] = []
    problems: list[Problem] = []
    problem_count: int = 0
    warnings: list[str] = []
    submitted_at: datetime | None = None
    receipt_key: str | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    """Why the run failed, in words (the first failed job's failure)."""
    usage: Usage | None = None
    """What the run's jobs used (requested resources × run time), once it has ended."""
    cost_usd: float | None = None
    """What that cost in US dollars, estimated from the prices of its jobs' queues (`platform.costs`), once it
    has ended; None where none of its queues has prices."""
    steps: list[RunStep] = []
    """How each step ended, in the spec's order: written with the run's end, so the `run.ended` event
    is made from the run's own change."""
    cancelled_by: str | None = None
    """Who asked `batchdrop cancel` to stop this run (their AWS identity), and when and why."""
    cancel_requested_at: datetime | None = None
    cancel_reason: str | None = None
    expires_at: int | None = None
    """Epoch seconds after which DynamoDB's TTL may delete a finished record."""
    resumes: str | None = None
    """The run this one resumes (`resume:` in its spec, `batchdrop rerun`): its unchanged, succeeded steps
    are reused, not submitted again (docs/resume.md)."""


class AttemptEnd(_Record):
    """How one attempt of a job (or, with `node`, of one node of a multi-node job) ended, from Batch's
    `attempts[]`: its own reason and exit code, and its failure in words (none if it succeeded)."""

    attempt: int
    """From 1."""
    node: int | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    status_reason: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    """Its containers' reason, e.g. `OutOfMemoryError: Container killed due to memory usage`."""
    failure_class: str | None = None
    failure: str | None = None
    log_stream: str | None = None
    """A node's log stream (`batchdrop logs --node`); a job's own are its `log_links`."""


class NodeEnd(_Record):
    """How one node of a multi-node parallel job ended (its latest attempt), kept on the job record by node
    index (`JobRecord.node_ends`), with short stored names (the aliases) and within `NODE_END_BYTES`, so
    1,000 nodes that all failed still fit the job's item."""

    attempt: int = Field(alias="a")
    status: Literal["SUCCEEDED", "FAILED"] = Field(alias="s")
    exit_code: int | None = Field(default=None, alias="x")
    failure_class: str | None = Field(default=None, alias="k")
    failure: str | None = Field(default=None, alias="w")
    """In words, cut to `limits.NODE_FAILURE_CHARS` (or fewer: `fitted`)."""
    log_group: str | None = Field(default=None, alias="g")
    """None: Batch's default, `/aws/batch/job`."""
    log_stream: str | None = Field(default=None, alias="l")

    def replaces(self, kept: NodeEnd | None) -> bool:
        """Whether this end is to be kept over the node's end kept so far: there is none, or it is an earlier
        attempt's (the same end again, or an earlier attempt's end come late, changes nothing)."""
        return kept is None or kept.attempt < self.attempt

    def stored(self) -> dict[str, object]:
        """As kept in the job's `node_ends` map: short names, nothing empty."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def fitted(self) -> NodeEnd:
        """This end within its bounds: words cut to `NODE_FAILURE_CHARS`; if still over `NODE_END_BYTES`,
        words cut further (to `NODE_FAILURE_MIN_CHARS` at least) to keep its log stream, which is worth more
        than their tail (its history keeps them whole); and if that is not enough, without its log group
        and stream (`batchdrop logs --node` finds them in its history)."""
        end = self.model_copy(update={"failure": _cut(self.failure, NODE_FAILURE_CHARS)})
        over = end.stored_bytes() - NODE_END_BYTES
        if over <= 0:
            return end
        if end.failure and len(end.failure) - over >= NODE_FAILURE_MIN_CHARS:
            shorter = end.model_copy(update={"failure": _cut(end.failure, len(end.failure) - over)})
            if shorter.stored_bytes() <= NODE_END_BYTES:  # a character may be more than a byte: measured
                return shorter
        return end.model_copy(update={"log_group": None, "log_stream": None})

    def stored_bytes(self) -> int:
        return len(json.dumps(self.stored(), ensure_ascii=False).encode())


def _cut(words: str | None, chars: int) -> str | None:
    """Words of at most `chars` characters, an ellipsis saying where they were cut."""
    return words if words is None or len(words) <= chars else words[: chars - 1] + "…"


class Transition(_Record):
    status: str
    at: datetime
    reason: str | None = None
    attempt: int = 0
    attempt_end: AttemptEnd | None = None
    """The end of the last attempt Batch reported with this status: the one before a retry's RUNNABLE,
    STARTING, RUNNING (why it was retried), or the last one at SUCCEEDED or FAILED."""

    @property
    def key(self) -> str:
        """History is keyed by attempt and status, so the same transition is kept once."""
        return f"{self.attempt}:{self.status}"


class JobRecord(_Record):
    job_id: str
    run_id: str
    team: str
    environment: str
    spec_name: str
    step: str
    job_name: str
    queue: str
    queue_arn: str
    hardware: Literal["cpu", "gpu"]
    job_definition: str
    job_definition_arn: str
    resources: Resources
    array_size: int | None = None
    nodes: int | None = None
    """A multi-node parallel job's nodes (its every node's end is in `history`, as `node <i> <status>`)."""
    node_ends: dict[str, NodeEnd] = {}
    """For a multi-node parallel job: each node's end as heard so far, by node index (`"2"`), its latest
    attempt's (`track.nodes`: one conditional write a tracking batch, in any order, redelivered or not)."""
    depends_on: list[str] = Field(default_factory=list)
    """Job ids this job waits for."""
    max_attempts: int = 1
    """The attempts its retry strategy allows."""
    status: str = "SUBMITTED"
    status_order: str | None = None
    """The order key of the event that set `status` (see batchdrop.track.batch_events.order_key)."""
    status_since: datetime | None = None
    status_reason: str | None = None
    attempts: int = 0
    history: dict[str, Transition] = {}
    submitted_at: datetime
    last_event_at: datetime
    """When batchdrop last learned this job's state (an event, or reconcile asking Batch)."""
    spec_digest: str
    source: SpecSource
    notify_on: list[str] = []
    step_count: int | None = None
    """How many steps its run has (None in records written before it was kept): a pipeline's steps
    are summed up in one message when the run ends, a single job speaks for itself."""
    exit_code: int | None = None
    failure_class: str | None = None
    failure: str | None = None
    log_links: list[LogLink] = []
    finished_at: datetime | None = None
    usage: Usage | None = None
    children: dict[str, int] = {}
    """For an array job: how many children are in each status."""
    child_vcpu_hours: float = 0.0
    child_gpu_hours: float = 0.0
    child_memory_gib_hours: float = 0.0
    recovery_policy: RecoveryPolicy | None = None
    """What batchdrop may resubmit this job as (its spec's `retries`; platform.recovery)."""
    recovery_counts: RecoveryCounts = RecoveryCounts()
    """Its step's recoveries and spot reclaims before this job."""
    recovers: str | None = None
    """The job this one replaces: its step's failed job, or for a step after it, the step's earlier job."""
    recovery: RecoveryDue | None = None
    """Tracking's decision, written with the FAILED status: this job is to be replaced (the submit function
    submits the new job)."""
    recovery_final: str | None = None
    """Why a failure its spec asked to recover was not (in numbers)."""
    recovered_by: str | None = None
    """The job that replaced it, once submitted."""
    recovery_story: list[str] = []
    """The recoveries of its step's chain before this job, in words, oldest first (each a `RecoveryDue`'s
    `words`): the newest job of a chain carries the whole story."""
    stuck_reported: str | None = None
    """The reason of the last `job.stuck` event, so the same one is not sent twice."""
    stuck_advice: str | None = None
    """What to do about it, in words: written with `stuck_reported`, told by the publish function."""
    stuck_seconds: float | None = None
    """How long the job had been RUNNABLE when it was reported stuck."""
    passed: list[Transition] = []
    """The statuses the job's last state change moved it through, in order (Batch's events of one
    batch are applied as one write): the outbox entry the publish function turns into events."""
    duration_seconds: float | None = None
    """The last attempt's run time, once the job has ended."""
    status_summary: dict[str, int] = {}
    """For an array job that ended: Batch's own count of its children by status."""
    attempt_ends: list[AttemptEnd] = []
    """Every finished attempt: its reason, exit code and failure (a spot reclaim of attempt 1 stays
    visible after attempt 2 succeeds)."""
    cancelled_by: str | None = None
    child_indices: str | None = None
    """For a recovery of some of an array's children: their original indices, by new index, in compact
    ranges (`3,7,10-14`; `batchdrop.spec.sweep.compact_indices`)."""
    reused_children: str | None = None
    """For a resumed array or sweep: the children (indices in its plan, compact ranges) it does not run
    because an earlier run's children with the same hash succeeded; `child_indices` are those it runs."""
    content_hash: str | None = None
    """The planned step's content hash (`PlannedJob.content_hash`): a resumed run reuses this job when its
    step's hash is unchanged and it succeeded (docs/resume.md)."""
    price: QueuePrice | None = None
    """Its queue's unit prices when it was submitted (the platform config's `price`): its cost in dollars
    is its usage × these (`batchdrop.platform.costs`); None where the queue has none."""
    sweep: dict[str, list[str]] | None = None
    """For a sweep: its axes and values in the spec's order, so child i's values are
    `batchdrop.spec.sweep.child_values(sweep, i)` (a recovery's children by their original index, see
    `child_indices`); None for other jobs, and for a sweep over `limits.SWEEP_RECORD_BYTES` (not kept).
    Like `history`, never in the job's own item (which every state change updates): written once beside it
    (`store.items.sweep_items`) with the record, and read back only by the report's reader; None on a
    record read any other way."""

    @property
    def region(self) -> str:
        """The AWS region of its queue (from the queue's ARN), for console links; "" if it is not an ARN."""
        parts = self.queue_arn.split(":")
        return parts[3] if len(parts) >= 6 else ""

    @property
    def child_usage(self) -> Usage:
        return Usage(
            vcpu_hours=self.child_vcpu_hours,
            gpu_hours=self.child_gpu_hours,
            memory_gib_hours=self.child_memory_gib_hours,
        )

    @property
    def told_usage(self) -> Usage | None:
        """What the job used, as told: an array's is its children's."""
        return self.child_usage if self.array_size else self.usage

    @property
    def told_children(self) -> dict[str, int] | None:
        """An array's children by status, as told (its final summary once it has one); None for a job."""
        return (self.status_summary or dict(self.children)) if self.array_size else None

    def ordered_history(self) -> list[Transition]:
        return sorted(self.history.values(), key=lambda item: (item.attempt, STATUS_RANK.get(item.status, 6), item.at))


class Receipt(_Record):
    """What a user finds at `receipts/<team>/<path>.json` after dropping `incoming/<team>/<path>`."""

    schema_: Literal["batchdrop.receipt/v1"] = Field(default="batchdrop.receipt/v1", alias="schema")
    status: Literal["submitted", "rejected"]
    run_id: str
    team: str
    spec_name: str | None = None
    environment: str | None = None
    source: SpecSource
    dropped_by: str | None = None
    """Who uploaded the file (the S3 notification's `userIdentity.principalId`)."""
    received_at: datetime
    decided_at: datetime | None = None
    jobs: list[SubmittedJobRef] = []
    problems: list[Problem] = []
    problem_count: int = 0
    warnings: list[str] = []
    follow: str
    """The command that shows this run's progress."""

    @classmethod
    def for_run(cls, run: RunRecord, problems: list[Problem]) -> Receipt:
        return cls(
            status="rejected" if run.status == "rejected" else "submitted",
            run_id=run.run_id,
            team=run.team,
            spec_name=run.spec_name,
            environment=run.environment,
            source=run.source,
            dropped_by=run.dropped_by,
            received_at=run.received_at,
            decided_at=run.submitted_at,
            jobs=run.jobs,
            problems=problems,
            problem_count=max(run.problem_count, len(problems)),
            warnings=run.warnings,
            follow=f"batchdrop status {run.run_id}",
        )


def kept_sweep(sweep: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
    """A sweep as its job keeps it (in an item beside the record): whole, or not at all when over
    `SWEEP_RECORD_BYTES` as JSON."""
    if not sweep or len(json.dumps(sweep).encode()) > SWEEP_RECORD_BYTES:
        return None
    return {axis: list(values) for axis, values in sweep.items()}


def fit_run(run: RunRecord) -> RunRecord:
    """The run within `RECORD_BYTES` as stored: problems and warnings halved until it fits
    (`problem_count` keeps the whole count). Whatever a spec holds, its record never meets
    DynamoDB's 400 KB item limit, so a rejection is always recorded, and so always told."""
    for name in ("problems", "warnings"):
        while len(run.model_dump_json().encode()) > RECORD_BYTES and getattr(run, name):
            items = getattr(run, name)
            run = run.model_copy(update={name: items[: len(items) // 2]})
    return run
