"""What AWS Batch says about a job: its EventBridge events and DescribeJobs, as one model.

"Batch Job State Change" and "Batch Job Queue Blocked" events carry, in
`detail`, the same JobDetail that DescribeJobs returns, so the reconcile
function's answers and the events go through the same state machine. The
models read only what batchdrop uses and ignore the rest (Batch adds fields).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from batchdrop.store.records import TERMINAL

DEFAULT_LOG_GROUP = "/aws/batch/job"


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True, populate_by_name=True)


class ContainerDetail(_Tolerant):
    name: str | None = None
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


class EcsProperties(_Tolerant):
    taskProperties: list[TaskProperties] = []


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
    arrayProperties: ArrayProperties | None = None
    tags: dict[str, str] = {}

    @property
    def is_child(self) -> bool:
        """An array child: its id is `<parent id>:<index>`."""
        return ":" in self.jobId

    @property
    def parent_id(self) -> str:
        return self.jobId.split(":", 1)[0]

    @property
    def child_index(self) -> int:
        return int(self.jobId.split(":", 1)[1])

    @property
    def exit_code(self) -> int | None:
        if self.container and self.container.exitCode is not None:
            return self.container.exitCode
        last = self.attempts[-1] if self.attempts else None
        if last and last.container and last.container.exitCode is not None:
            return last.container.exitCode
        for container in _task_containers(self.ecsProperties.taskProperties if self.ecsProperties else []):
            if container.exitCode not in (None, 0):
                return container.exitCode
        return None

    @property
    def container_reason(self) -> str | None:
        if self.container and self.container.reason:
            return self.container.reason
        for attempt in reversed(self.attempts):
            if attempt.container and attempt.container.reason:
                return attempt.container.reason
            for container in _task_containers(attempt.taskProperties):
                if container.reason:
                    return container.reason
        return None


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


def log_streams(detail: JobDetail) -> list[tuple[int, str | None, str, str]]:
    """Every attempt's log stream as (attempt number from 1, container name, log group, stream)."""
    streams: list[tuple[int, str | None, str, str]] = []
    for number, attempt in enumerate(detail.attempts, start=1):
        containers = [attempt.container] if attempt.container else _task_containers(attempt.taskProperties)
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


def log_url(region: str, group: str, stream: str) -> str:
    """The CloudWatch console page of a log stream (the console double-escapes `/` as `$252F`)."""

    def escape(text: str) -> str:
        return quote(text, safe="").replace("%", "$25")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{escape(group)}/log-events/{escape(stream)}"
    )


def run_seconds(detail: JobDetail) -> float:
    """Time spent running, summed over attempts (what resources were held for)."""
    total = 0.0
    for attempt in detail.attempts:
        if attempt.startedAt and attempt.stoppedAt and attempt.stoppedAt > attempt.startedAt:
            total += (attempt.stoppedAt - attempt.startedAt) / 1000
    if not detail.attempts and detail.startedAt and detail.stoppedAt and detail.stoppedAt > detail.startedAt:
        total = (detail.stoppedAt - detail.startedAt) / 1000
    return total


def epoch_ms(moment: int | None) -> datetime | None:
    return datetime.fromtimestamp(moment / 1000, UTC) if moment else None
