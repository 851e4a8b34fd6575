"""What AWS Batch says about a job: its EventBridge events and DescribeJobs, as one model.

"Batch Job State Change" and "Batch Job Queue Blocked" events carry, in
`detail`, the same JobDetail that DescribeJobs returns, so the reconcile
function's answers and the events go through the same state machine. The
models read only what batchdrop uses and ignore the rest (Batch adds fields).

A job's shape decides where Batch puts its exit codes and reasons: a `container`
job in `container` and `attempts[].container`; an `ecsProperties` job in
`ecsProperties.taskProperties[].containers[]` and `attempts[].taskProperties[]
.containers[]`; an EKS job in `eksProperties.podProperties.containers[]` and
`eksAttempts[].containers[]`. Every attempt has its own `statusReason`.
`Attempt` reads one finished attempt whatever the shape; `JobDetail.exit_code`
reads every place. A multi-node parallel job's nodes are jobs `<id>#<node>`
with `nodeDetails`; Batch fills the job's own status, reason and exit code from
its main node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from batchdrop.gateways.log_links import DEFAULT_LOG_GROUP
from batchdrop.store.records import TERMINAL


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True, populate_by_name=True)


class ContainerDetail(_Tolerant):
    name: str | None = None
    essential: bool | None = None
    """Only in `ecsProperties` (ECS's default is essential): a task ends when an essential container does,
    and ECS then stops the others (their exit codes, often 137 or 143, say nothing of the job)."""
    exitCode: int | None = None
    reason: str | None = None
    logStreamName: str | None = None
    vcpus: float | None = None
    memory: int | None = None
    resourceRequirements: list[dict[str, str]] = []
    logConfiguration: dict[str, Any] | None = None


class TaskProperties(_Tolerant):
    containers: list[ContainerDetail] = []


class AttemptDetail(_Tolerant):
    container: ContainerDetail | None = None
    taskProperties: list[TaskProperties] = []
    startedAt: int | None = None
    stoppedAt: int | None = None
    statusReason: str | None = None

    @property
    def containers(self) -> list[ContainerDetail]:
        return [self.container] if self.container else _task_containers(self.taskProperties)


class EksAttemptDetail(_Tolerant):
    """An EKS job's attempt (`eksAttempts[]`): its pod's containers' exit codes and reasons."""

    containers: list[ContainerDetail] = []
    initContainers: list[ContainerDetail] = []
    podName: str | None = None
    startedAt: int | None = None
    stoppedAt: int | None = None
    statusReason: str | None = None


class EcsProperties(_Tolerant):
    taskProperties: list[TaskProperties] = []


class PodProperties(_Tolerant):
    containers: list[ContainerDetail] = []
    podName: str | None = None


class EksProperties(_Tolerant):
    podProperties: PodProperties | None = None


class NodeDetails(_Tolerant):
    """On a node of a multi-node parallel job (`<job id>#<node index>`)."""

    nodeIndex: int | None = None
    isMainNode: bool | None = None


class NodeRange(_Tolerant):
    """One node range of a multi-node parallel job: `targetNodes` `0:`, `1:3`, `2`, with its container."""

    targetNodes: str = "0:"
    container: ContainerDetail | None = None

    def count(self, nodes: int) -> int:
        """How many of a job's `nodes` the range covers."""
        first, colon, last = self.targetNodes.partition(":")
        start = int(first) if first.isdigit() else 0
        end = (int(last) if last.isdigit() else nodes - 1) if colon else start
        return max(0, min(end, nodes - 1) - start + 1)


class NodeProperties(_Tolerant):
    """On a multi-node parallel job itself."""

    numNodes: int | None = None
    mainNode: int | None = None
    nodeRangeProperties: list[NodeRange] = []


@dataclass(frozen=True)
class Attempt:
    """One finished attempt of a job, whatever its shape (container, ECS properties, EKS)."""

    number: int
    """From 1."""
    started_at: int | None
    stopped_at: int | None
    status_reason: str | None
    exit_code: int | None
    reason: str | None
    """Its containers' reason (e.g. `OutOfMemoryError: Container killed due to memory usage`)."""


class ArrayProperties(_Tolerant):
    size: int | None = None
    index: int | None = None
    statusSummary: dict[str, int] | None = None


class JobDetail(_Tolerant):
    """Batch's JobDetail: the `detail` of its events, and an item of DescribeJobs."""

    jobId: str
    jobName: str
    jobQueue: str
    status: Literal["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
    statusReason: str | None = None
    attempts: list[AttemptDetail] = []
    createdAt: int | None = None
    startedAt: int | None = None
    stoppedAt: int | None = None
    jobDefinition: str | None = None
    container: ContainerDetail | None = None
    ecsProperties: EcsProperties | None = None
    eksProperties: EksProperties | None = None
    eksAttempts: list[EksAttemptDetail] = []
    nodeProperties: NodeProperties | None = None
    nodeDetails: NodeDetails | None = None
    arrayProperties: ArrayProperties | None = None
    tags: dict[str, str] = {}

    @property
    def is_child(self) -> bool:
        """An array child: its id is `<parent id>:<index>`."""
        return ":" in self.jobId

    @property
    def owner_id(self) -> str:
        """The id of the job batchdrop records this event under: an array child's or a node's job."""
        return self.jobId.split(":", 1)[0].split("#", 1)[0]

    @property
    def is_node(self) -> bool:
        """A node of a multi-node parallel job: its id is `<job id>#<node index>`."""
        return "#" in self.jobId

    @property
    def node_job_id(self) -> str:
        return self.jobId.split("#", 1)[0]

    @property
    def node_index(self) -> int:
        if self.nodeDetails and self.nodeDetails.nodeIndex is not None:
            return self.nodeDetails.nodeIndex
        return int(self.jobId.split("#", 1)[1])

    @property
    def attempt_count(self) -> int:
        """The attempts that have finished (an EKS job lists them in `eksAttempts`)."""
        return max(len(self.attempts), len(self.eksAttempts))

    @property
    def finished_attempts(self) -> list[Attempt]:
        """Every finished attempt, oldest first, with its own reason and exit code."""
        essential = self._essential_names()
        if len(self.eksAttempts) > len(self.attempts):
            return [
                _attempt(number, eks, eks.containers, essential) for number, eks in enumerate(self.eksAttempts, start=1)
            ]
        return [
            _attempt(number, attempt, attempt.containers, essential)
            for number, attempt in enumerate(self.attempts, start=1)
        ]

    @property
    def parent_id(self) -> str:
        return self.jobId.split(":", 1)[0]

    @property
    def child_index(self) -> int:
        return int(self.jobId.split(":", 1)[1])

    @property
    def exit_code(self) -> int | None:
        """The job's exit code (0 included): its container's; once it has ended, its last attempt's,
        else its ECS task's or EKS pod's essential containers' (a non-zero code first)."""
        if self.container and self.container.exitCode is not None:
            return self.container.exitCode
        if self.status not in TERMINAL:
            return None
        attempts = self.finished_attempts
        if attempts and attempts[-1].exit_code is not None:
            return attempts[-1].exit_code
        return _exit_code(self._current_containers(), self._essential_names())

    @property
    def container_reason(self) -> str | None:
        if self.container and self.container.reason:
            return self.container.reason
        attempts = self.finished_attempts  # the last one's: an earlier attempt's reason is not the job's
        if attempts and attempts[-1].reason:
            return attempts[-1].reason
        return next((container.reason for container in self._current_containers() if container.reason), None)

    @property
    def last_attempt_reason(self) -> str | None:
        """The last finished attempt's own status reason (often the only one that says why)."""
        attempts = self.finished_attempts
        return attempts[-1].status_reason if attempts else None

    def _current_containers(self) -> list[ContainerDetail]:
        containers = _task_containers(self.ecsProperties.taskProperties if self.ecsProperties else [])
        if self.eksProperties and self.eksProperties.podProperties:
            containers += self.eksProperties.podProperties.containers
        return containers

    def _essential_names(self) -> set[str] | None:
        """The names of an ECS-properties job's essential containers; None when every container counts."""
        containers = _task_containers(self.ecsProperties.taskProperties if self.ecsProperties else [])
        if not any(container.essential is False for container in containers):
            return None
        return {container.name or "" for container in containers if container.essential is not False}


class BatchEvent(_Tolerant):
    """An EventBridge event from `aws.batch` (state change or queue blocked)."""

    id: str
    detail_type: str = Field(alias="detail-type")
    source: Literal["aws.batch"]
    time: datetime
    region: str
    detail: JobDetail

    @property
    def blocked(self) -> bool:
        return self.detail_type == "Batch Job Queue Blocked"


def _task_containers(tasks: list[TaskProperties]) -> list[ContainerDetail]:
    return [container for task in tasks for container in task.containers]


def _exit_code(containers: list[ContainerDetail], essential: set[str] | None) -> int | None:
    """Of a task's or pod's containers: an essential one's non-zero exit code, else 0 if one exited 0."""
    codes = [c.exitCode for c in containers if c.exitCode is not None and (essential is None or c.name in essential)]
    return next((code for code in codes if code != 0), codes[0] if codes else None)


def _attempt(
    number: int,
    attempt: AttemptDetail | EksAttemptDetail,
    containers: list[ContainerDetail],
    essential: set[str] | None,
) -> Attempt:
    code = _exit_code(containers, essential)
    failing = [c for c in containers if c.exitCode == code] if code else []
    reason = next((c.reason for c in failing + containers if c.reason), None)
    return Attempt(number, attempt.startedAt, attempt.stoppedAt, attempt.statusReason, code, reason)


def log_streams(detail: JobDetail) -> list[tuple[int, str | None, str, str]]:
    """Every attempt's log stream as (attempt number from 1, container name, log group, stream). An EKS
    job has none here: its logs are wherever its cluster sends them."""
    streams: list[tuple[int, str | None, str, str]] = []
    for number, attempt in enumerate(detail.attempts, start=1):
        containers = attempt.containers
        streams += [
            (number, container.name, _log_group(container), container.logStreamName)
            for container in containers
            if container and container.logStreamName
        ]
    running = len(detail.attempts) + 1  # the attempt in progress (or the last, if none were recorded)
    current = [detail.container] if detail.container else []
    current += _task_containers(detail.ecsProperties.taskProperties if detail.ecsProperties else [])
    for container in current:
        if container.logStreamName and all(stream[3] != container.logStreamName for stream in streams):
            streams.append(
                (
                    running if detail.status not in TERMINAL else max(1, running - 1),
                    container.name,
                    _log_group(container),
                    container.logStreamName,
                )
            )
    return streams


def _log_group(container: ContainerDetail) -> str:
    options = (container.logConfiguration or {}).get("options") or {}
    return str(options.get("awslogs-group", DEFAULT_LOG_GROUP))


def run_seconds(detail: JobDetail) -> float:
    """Time spent running, summed over attempts (what resources were held for)."""
    return sum((seconds for seconds in attempt_run_seconds(detail) if seconds is not None), 0.0)


def attempt_run_seconds(detail: JobDetail) -> list[float | None]:
    """Each finished attempt's run time, oldest first, from its start to its stop (None for one Batch tells
    no start or stop of: it never ran); with no attempt told, the job's own start to stop."""
    spans = [(attempt.started_at, attempt.stopped_at) for attempt in detail.finished_attempts]
    return [
        (stopped - started) / 1000 if started and stopped and stopped >= started else None
        for started, stopped in spans or [(detail.startedAt, detail.stoppedAt)]
    ]


def epoch_ms(moment: int | None) -> datetime | None:
    return datetime.fromtimestamp(moment / 1000, UTC) if moment else None
