"""Where a queue stands, as Batch tells it: a job's place at the front of its queue
(GetJobQueueSnapshot) and the state of the queue's compute environments
(DescribeJobQueues, DescribeComputeEnvironments). Read from Batch's answers here; asked by
`BatchGateway.queue_position` and `BatchGateway.compute_environments_state`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FRONT_OF_QUEUE = 100
"""How many RUNNABLE jobs GetJobQueueSnapshot lists at most: a job behind them has no place to tell."""


@dataclass(frozen=True)
class QueuePlace:
    """A job's place at the front of its queue (1 is the next to start), or None where Batch did not list it."""

    position: int | None
    listed: int
    """How many jobs Batch listed at the queue's front (at most `FRONT_OF_QUEUE`)."""
    since: datetime | None = None
    """When the job reached that place (Batch's `earliestTimeAtPosition`)."""


@dataclass(frozen=True)
class EnvironmentState:
    """One compute environment of a queue, in the queue's order."""

    name: str
    status: str
    """VALID, INVALID, CREATING, UPDATING, DELETING or DELETED."""
    state: str
    """ENABLED or DISABLED."""
    status_reason: str | None = None
    max_vcpus: int | None = None
    desired_vcpus: int | None = None
    """What Batch is scaling the environment to (None for an unmanaged or Fargate one that does not say)."""

    @property
    def usable(self) -> bool:
        return self.status == "VALID" and self.state == "ENABLED"

    @property
    def at_maximum(self) -> bool:
        return self.max_vcpus is not None and self.desired_vcpus is not None and self.desired_vcpus >= self.max_vcpus


@dataclass(frozen=True)
class QueueFront:
    """A queue's front as GetJobQueueSnapshot shows it: its RUNNABLE jobs' ids in order, each with when it
    reached its place."""

    jobs: tuple[tuple[str, datetime | None], ...]

    @classmethod
    def from_snapshot(cls, response: Mapping[str, Any]) -> QueueFront:
        listed = response.get("frontOfQueue", {}).get("jobs", [])
        return cls(
            jobs=tuple(
                (str(job.get("jobArn", "")).rsplit("/", 1)[-1], _when(job.get("earliestTimeAtPosition")))
                for job in listed
            )
        )

    def place_of(self, job_id: str) -> QueuePlace:
        for index, (listed_id, since) in enumerate(self.jobs):
            if listed_id == job_id:
                return QueuePlace(position=index + 1, listed=len(self.jobs), since=since)
        return QueuePlace(position=None, listed=len(self.jobs))


def environment_state(described: Mapping[str, Any]) -> EnvironmentState:
    """One of DescribeComputeEnvironments' answers, as batchdrop reads it."""
    resources = described.get("computeResources") or {}
    return EnvironmentState(
        name=str(described.get("computeEnvironmentName") or described.get("computeEnvironmentArn", "")),
        status=str(described.get("status", "VALID")),
        state=str(described.get("state", "ENABLED")),
        status_reason=described.get("statusReason"),
        max_vcpus=_count(resources.get("maxvCpus")),
        desired_vcpus=_count(resources.get("desiredvCpus")),
    )


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _when(epoch_ms: object) -> datetime | None:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC) if isinstance(epoch_ms, int | float) else None
