"""Why a job failed, and why it is stuck, in words a data scientist can act on."""

from __future__ import annotations

from dataclasses import dataclass

from batchdrop.events.contract import FailureClass
from batchdrop.platform.config import QueueConfig
from batchdrop.spec.model import Resources
from batchdrop.track.batch_events import JobDetail
from batchdrop.units import gib, number


@dataclass(frozen=True)
class Failure:
    kind: FailureClass
    words: str
    """Plain words, e.g. 'out of memory (exit code 137)'."""


def classify(detail: JobDetail) -> Failure:
    """The kind of a FAILED job's failure, from its status reason, container reason and exit code."""
    reason = detail.statusReason or ""
    container = detail.container_reason or ""
    code = detail.exit_code
    lowered = f"{reason} {container}".lower()
    if reason.startswith("Host EC2") or "host ec2" in lowered:
        return Failure("spot_reclaim", "the instance was reclaimed (spot interruption)")
    if "outofmemory" in lowered.replace(" ", "") or "oom" in lowered.split():
        return Failure("out_of_memory", f"out of memory{_code(code)}")
    if "cannotpullcontainer" in lowered.replace(" ", "") or "pull image" in lowered:
        return Failure("image_pull", "the container image could not be pulled")
    if "duration exceeded timeout" in lowered or ("timeout" in lowered and "attempt" in lowered):
        return Failure("timeout", "the attempt ran past its timeout")
    if "dependent job" in lowered or "upstream" in lowered:
        return Failure("dependency", reason or "a job it depends on failed")
    if "cancel" in lowered or "terminated by user" in lowered or "jobstatetimelimit" in lowered.replace(" ", ""):
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
