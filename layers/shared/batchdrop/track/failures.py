"""Why a job failed, and why it is stuck, in words a data scientist can act on."""

from __future__ import annotations

from dataclasses import dataclass

from batchdrop.events.contract import FailureClass
from batchdrop.platform.config import QueueConfig
from batchdrop.spec.model import Resources
from batchdrop.store.records import AttemptEnd
from batchdrop.track.batch_events import Attempt, JobDetail, epoch_ms
from batchdrop.units import gib, number


@dataclass(frozen=True)
class Failure:
    kind: FailureClass
    words: str
    """Plain words, e.g. 'out of memory (exit code 137)'."""


def classify(detail: JobDetail) -> Failure:
    """The kind of a FAILED job's failure, from its status reason, its last attempt's (often the only one
    that says why), its containers' reason and its exit code."""
    return _classify([detail.statusReason, detail.last_attempt_reason], detail.container_reason, detail.exit_code)


def classify_attempt(attempt: Attempt) -> Failure:
    """The kind of one failed attempt's failure, from its own reasons and exit code."""
    return _classify([attempt.status_reason], attempt.reason, attempt.exit_code)


def attempt_ends(detail: JobDetail, node: int | None = None) -> list[AttemptEnd]:
    """Every finished attempt of the job, each with its failure: every attempt failed but the last of a
    job that SUCCEEDED (Batch retries only a failed attempt)."""
    attempts = detail.finished_attempts
    ends = []
    for attempt in attempts:
        succeeded = detail.status == "SUCCEEDED" and attempt.number == len(attempts)
        failure = None if succeeded else classify_attempt(attempt)
        ends.append(
            AttemptEnd(
                attempt=attempt.number,
                node=node,
                started_at=epoch_ms(attempt.started_at),
                stopped_at=epoch_ms(attempt.stopped_at),
                status_reason=attempt.status_reason,
                exit_code=attempt.exit_code,
                reason=attempt.reason,
                failure_class=failure.kind if failure else None,
                failure=failure.words if failure else None,
            )
        )
    return ends


def retried_because(end: AttemptEnd) -> str:
    """Why an attempt was followed by another, in words: 'attempt 1 failed: the instance was reclaimed …'."""
    return f"attempt {end.attempt} failed: {end.failure or end.status_reason or 'Batch gave no reason'}"


def _classify(reasons: list[str | None], container_reason: str | None, code: int | None) -> Failure:
    said = [reason for reason in reasons if reason]
    reason = said[0] if said else ""
    lowered = " ".join([*said, container_reason or ""]).lower()
    if "host ec2" in lowered:
        return Failure("spot_reclaim", "the instance was reclaimed (spot interruption)")
    squeezed = lowered.replace(" ", "")
    if "outofmemory" in squeezed or "oomkilled" in squeezed or "oom" in lowered.split():
        return Failure("out_of_memory", f"out of memory{_code(code)}")
    if "cannotpullcontainer" in squeezed or "pull image" in lowered or "errimagepull" in squeezed:
        return Failure("image_pull", "the container image could not be pulled")
    if "duration exceeded timeout" in lowered or ("timeout" in lowered and "attempt" in lowered):
        return Failure("timeout", "the attempt ran past its timeout")
    if "dependent job" in lowered or "upstream" in lowered:
        return Failure("dependency", reason or "a job it depends on failed")
    if "cancel" in lowered or "terminated by user" in lowered or "jobstatetimelimit" in squeezed:
        return Failure("cancelled", reason or "cancelled")
    if code == 137:
        return Failure("out_of_memory", "killed with exit code 137 (usually out of memory)")
    if code not in (None, 0):
        return Failure("non_zero_exit", f"the program exited with code {code}")
    return Failure("unknown", reason or "Batch gave no reason")


def _code(code: int | None) -> str:
    return f" (exit code {code})" if code is not None else ""


def stuck_advice(reason: str | None, resources: Resources, queue_name: str, queue: QueueConfig | None) -> str:
    """What to do about a job that sits RUNNABLE, from Batch's status reason and the platform config."""
    text = reason or ""
    code = text.split(" - ", 1)[0].strip()
    if code == "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT" or "COMPUTE_ENVIRONMENT_MAX_RESOURCE" in code:
        return _too_big(resources, queue_name, queue)
    if code.startswith("CAPACITY:"):
        return (
            f"AWS has no spare capacity right now for the instances of queue {queue_name} (often spot); "
            "the job starts when capacity returns. If it is urgent, ask for fewer vCPUs, less memory or fewer "
            "GPUs, so that more instance types fit."
        )
    if code.startswith(("MISCONFIGURATION:SERVICE_ROLE", "ACTION_REQUIRED", "MISCONFIGURATION")):
        return (
            f"Queue {queue_name} cannot start jobs: its compute environment is misconfigured ({code}). "
            "Nothing in your spec can fix this; the platform team must."
        )
    return (
        f"The job has waited in queue {queue_name} without starting"
        + (f" (Batch says: {text})" if text else "")
        + ". It may be waiting its turn behind other jobs, or for capacity; "
        "if it waits much longer, ask the platform team to look at the queue."
    )


def _too_big(resources: Resources, queue_name: str, queue: QueueConfig | None) -> str:
    wanted = _describe(resources.vcpus, resources.memory_mib, resources.gpus)
    if queue is None:
        return f"The job asked for {wanted}; no instance of queue {queue_name} is that large."
    limits = []
    if resources.vcpus > queue.max_vcpus:
        limits.append(f"{number(resources.vcpus)} vCPUs where its largest instance has {number(queue.max_vcpus)}")
    if resources.memory_mib > queue.max_memory_mib:
        limits.append(
            f"{gib(resources.memory_mib)} of memory where its largest instance has {gib(queue.max_memory_mib)}"
        )
    if resources.gpus > queue.max_gpus:
        limits.append(f"{resources.gpus} GPUs where its largest instance has {queue.max_gpus}")
    if limits:
        return f"The job asked queue {queue_name} for " + "; and ".join(limits) + ". Ask for less, then drop it again."
    return (
        f"The job asked for {wanted}, which the platform config says queue {queue_name} can run, "
        "but its compute environments cannot: the platform config and the queue disagree. "
        "Tell the platform team (a smaller request will likely start)."
    )


def _describe(vcpus: float, memory_mib: int, gpus: int) -> str:
    parts = [f"{number(vcpus)} vCPUs", f"{gib(memory_mib)} of memory"]
    if gpus:
        parts.append(f"{gpus} GPUs")
    return ", ".join(parts)
