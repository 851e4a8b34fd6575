"""What the local Batch keeps of each job it follows (`LocalJob`: the job as Batch shows it, its fate,
its attempts, its children or nodes), how long each phase of its lifecycle takes (`Pace`), and the
record of an attempt as Batch shows it when the attempt ends (`attempt_record`). Pure: no AWS calls.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchdrop_local.batch_fates import JobFate, Scenario
from batchdrop_local.state_changes import epoch_ms, log_stream

ECS = "arn:aws:ecs:us-east-1:123456789012"


@dataclass
class LocalJob:
    view: dict[str, Any]
    """The job as Batch shows it (its events' detail)."""
    fate: JobFate
    depends_on: list[str]
    array_size: int | None
    status: str = "SUBMITTED"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_at: float = 0.0
    started_at: datetime | None = None
    children: list[LocalJob] = field(default_factory=list)
    retry_strategy: dict[str, Any] = field(default_factory=dict)
    """As submitted (`attempts`, `evaluateOnExit`): how Batch retries a failed attempt."""
    child_index: int | None = None
    """For an array child: its original index (the index it had before any resubmission)."""
    memory_mib: int | None = None
    """The memory it asked for (its request's override, else its job definition's)."""
    nodes: int | None = None
    """A multi-node parallel job's nodes: each tells its own events, `<job id>#<node index>`."""

    @property
    def ended(self) -> bool:
        return self.status in {"SUCCEEDED", "FAILED"}


@dataclass
class Pace:
    """How long each phase takes: the scenario's seconds (read when asked), at the emulator's speed."""

    scenario: Scenario
    speed: float

    def seconds(self, phase: str) -> float:
        defaults = {"queued": 1.0, "starting": 1.0, "running": 4.0, "child": 1.5}
        return self.scenario.seconds.get(phase, defaults[phase]) / self.speed


def attempt_record(
    job: LocalJob, *, exit_code: int | None, status_reason: str | None = None, container_reason: str | None = None
) -> dict[str, Any]:
    """The job's attempt that ends now (the next after those it has), as Batch shows it."""
    started = job.started_at or datetime.now(UTC)
    return {
        "container": {
            "containerInstanceArn": f"{ECS}:container-instance/local/{uuid.uuid4().hex}",
            "taskArn": f"{ECS}:task/local/{uuid.uuid4().hex}",
            **({"exitCode": exit_code} if exit_code is not None else {}),
            **({"reason": container_reason} if container_reason else {}),
            "logStreamName": log_stream(job.view, len(job.attempts) + 1),
            "networkInterfaces": [],
        },
        "startedAt": epoch_ms(started),
        "stoppedAt": epoch_ms(datetime.now(UTC)),
        "statusReason": status_reason or "Essential container in task exited",
    }
