"""The platform config checked against what the account really has (docs/platform-check.md).

Pure: given the config and the account's queues, compute environments and job definitions as
`gateways/account` read them, it says, per queue and per job definition, what agrees and what does
not. An `error` is a config that will hurt someone (jobs that sit RUNNABLE for ever, jobs Batch
refuses); a `warning` is one that only wastes (jobs refused that would have run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from batchdrop.platform.config import PlatformConfig, QueueConfig

Severity = Literal["ok", "warning", "error"]

KERNEL_SHARE = 0.025
"""Memory the kernel and platform keep of an instance: an m4.large's 8,192 MiB register as 7,985 MiB
(AWS Batch, "Compute resource memory management")."""
AGENT_RESERVED_MIB = 32
"""What the Batch AMI's ECS agent reserves besides (ECS_RESERVED_MEMORY, AWS Batch "Reserve system memory")."""
MEMORY_SLACK = 0.9
"""A configured memory this far below the instance's is said (`warning`): the figures above are estimates."""
FARGATE_MAX = (16, 122880)
"""The largest Fargate task: 16 vCPUs and 120 GiB."""
SPOT_TYPES = frozenset({"SPOT", "FARGATE_SPOT"})
FARGATE_TYPES = frozenset({"FARGATE", "FARGATE_SPOT"})


def usable_memory_mib(installed_mib: int) -> int:
    """The memory a job may ask for on an instance: what is installed, less what the kernel and the ECS
    agent keep. A job asking for more than this is never placed on it."""
    return installed_mib - math.ceil(installed_mib * KERNEL_SHARE) - AGENT_RESERVED_MIB


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    """Installed memory (DescribeInstanceTypes' MemoryInfo.SizeInMiB)."""
    gpus: int


@dataclass(frozen=True)
class ComputeEnvironment:
    arn: str
    name: str
    state: str
    status: str
    kind: str | None
    """EC2, SPOT, FARGATE or FARGATE_SPOT; None for an unmanaged environment."""
    max_vcpus: int | None
    instance_types: tuple[InstanceType, ...] = ()
    orchestration: str = "ECS"

    @property
    def usable(self) -> bool:
        return self.state == "ENABLED" and self.status == "VALID"


@dataclass(frozen=True)
class JobQueue:
    arn: str
    name: str
    state: str
    status: str
    scheduling_policy_arn: str | None
    environments: tuple[ComputeEnvironment, ...]


@dataclass(frozen=True)
class JobDefinition:
    arn: str
    name: str
    revision: int
    status: str
    type: str
    """container or multinode."""
    platforms: tuple[str, ...] = ("EC2",)
    orchestration: str = "ECS"


@dataclass(frozen=True)
class Account:
    """What the account has of what the config names: queues by ARN, job definitions by the config's
    reference (absent: not found)."""

    queues: Mapping[str, JobQueue]
    definitions: Mapping[str, JobDefinition]


@dataclass(frozen=True)
class Largest:
    """The most a queue's compute environments can give one job, each resource on its own (as the
    config's maxima are), and the instance types that give them."""

    vcpus: int
    memory_mib: int
    gpus: int
    instances: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    subject: Literal["queue", "job definition"]
    name: str
    check: str
    severity: Severity
    detail: str


_Found = Callable[[str, Severity, str], Finding]
"""The finding maker of one queue: (check, severity, detail)."""


@dataclass(frozen=True)
class DriftReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def drifted(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity != "ok"]


def largest_of(environments: Sequence[ComputeEnvironment]) -> Largest | None:
    """What the enabled environments can launch; None when none can be told (none enabled, or unmanaged)."""
    vcpus = memory = gpus = 0
    names: list[str] = []
    told = False
    for environment in environments:
        if environment.state != "ENABLED" or environment.kind is None:
            continue
        cap = environment.max_vcpus if environment.max_vcpus is not None else 1 << 30
        if environment.kind in FARGATE_TYPES:
            told = True
            vcpus, memory = max(vcpus, min(FARGATE_MAX[0], cap)), max(memory, FARGATE_MAX[1])
            names.append(environment.kind.lower())
            continue
        for instance in environment.instance_types:
            told = True
            vcpus = max(vcpus, min(instance.vcpus, cap))
            memory = max(memory, usable_memory_mib(instance.memory_mib))
            gpus = max(gpus, instance.gpus)
            names.append(instance.name)
    return Largest(vcpus, memory, gpus, tuple(sorted(set(names)))) if told else None


def capacity_of(environments: Sequence[ComputeEnvironment]) -> str | None:
    """spot, on_demand, or None when the environments mix them (or none is managed)."""
    kinds = {environment.kind in SPOT_TYPES for environment in environments if environment.kind is not None}
    if len(kinds) != 1:
        return None
    return "spot" if kinds.pop() else "on_demand"


def check_account(config: PlatformConfig, account: Account) -> DriftReport:
    """Every queue and job definition of the config against the account."""
    report = DriftReport()
    for name, declared in config.queues.items():
        report.findings.extend(_queue_findings(name, declared, account.queues.get(declared.arn)))
    for team_name, team in config.teams.items():
        routed = [
            queue
            for route in config.routes
            if route.when.team in (None, team_name)
            for queue in (route.queue, route.fallback)
            if queue is not None
        ]
        reachable = [
            account.queues[config.queues[queue].arn]
            for queue in dict.fromkeys(routed)
            if queue in config.queues and config.queues[queue].arn in account.queues
        ]
        for alias, reference in team.job_definitions.items():
            report.findings.extend(
                _definition_findings(f"{team_name}/{alias}", reference, account.definitions.get(reference), reachable)
            )
    return report


def _queue_findings(name: str, declared: QueueConfig, queue: JobQueue | None) -> list[Finding]:
    def found(check: str, severity: Severity, detail: str) -> Finding:
        return Finding("queue", name, check, severity, detail)

    if queue is None:
        return [found("exists", "error", f"no job queue {declared.arn} in the account: every job routed here fails")]
    findings = [
        found("exists", "ok", f"{queue.state}, {queue.status}")
        if queue.state == "ENABLED" and queue.status == "VALID"
        else found("exists", "error", f"the queue is {queue.state}, {queue.status}: it takes or runs no jobs")
    ]
    unusable = [environment.name for environment in queue.environments if not environment.usable]
    if not any(environment.usable for environment in queue.environments):
        findings.append(found("environments", "error", "none of its compute environments is ENABLED and VALID"))
    elif unusable:
        findings.append(found("environments", "warning", f"not ENABLED and VALID: {', '.join(unusable)}"))
    largest = largest_of(queue.environments)
    if largest is None:
        findings.append(
            found("maxima", "warning", "its environments' instances cannot be told (unmanaged): maxima not checked")
        )
    else:
        findings.extend(_maxima_findings(found, declared, largest))
    findings.append(_fair_share_finding(found, declared, queue))
    capacity = capacity_of(queue.environments)
    kinds = ", ".join(sorted({environment.kind for environment in queue.environments if environment.kind}))
    if declared.capacity is None:
        findings.append(found("capacity", "ok", f"not said in the config; the account's: {kinds or 'unmanaged'}"))
    elif capacity is None:
        findings.append(found("capacity", "warning", f"config says {declared.capacity}; its environments mix {kinds}"))
    elif capacity != declared.capacity:
        findings.append(found("capacity", "error", f"config says {declared.capacity}; its environments are {kinds}"))
    else:
        findings.append(found("capacity", "ok", f"{capacity} ({kinds})"))
    return findings


def _maxima_findings(found: _Found, declared: QueueConfig, largest: Largest) -> list[Finding]:
    findings: list[Finding] = []
    gpu_instances = largest.gpus > 0
    if declared.hardware == "gpu" and not gpu_instances:
        findings.append(found("hardware", "error", "a gpu queue whose environments launch no GPU instance"))
    elif declared.hardware == "cpu" and gpu_instances:
        findings.append(
            found("hardware", "error", "a cpu queue whose environments launch GPU instances (costly, and not for cpu)")
        )
    else:
        findings.append(found("hardware", "ok", f"{declared.hardware}: {', '.join(largest.instances)}"))
    for check, configured, actual, low in (
        ("max_vcpus", declared.max_vcpus, largest.vcpus, largest.vcpus),
        ("max_memory_mib", declared.max_memory_mib, largest.memory_mib, largest.memory_mib * MEMORY_SLACK),
        # A cpu queue's GPUs are the hardware check's: its max_gpus is 0 by the config's own rules.
        ("max_gpus", declared.max_gpus, largest.gpus, largest.gpus if declared.hardware == "gpu" else 0),
    ):
        shown = f"config {_number(configured)}, largest instance {_number(actual)}"
        if configured > actual:
            findings.append(found(check, "error", f"{shown}: too high, a job asking for more will sit RUNNABLE"))
        elif configured < low:
            findings.append(found(check, "warning", f"{shown}: too low, jobs that would run are refused"))
        else:
            findings.append(found(check, "ok", shown))
    return findings


def _fair_share_finding(found: _Found, declared: QueueConfig, queue: JobQueue) -> Finding:
    has_policy = queue.scheduling_policy_arn is not None
    if declared.fair_share and not has_policy:
        return found("fair_share", "error", "config says fair_share but the queue has no scheduling policy")
    if has_policy and not declared.fair_share:
        return found("fair_share", "error", "the queue has a scheduling policy; say fair_share: true")
    return found("fair_share", "ok", "scheduling policy present" if has_policy else "first in, first out")


def _definition_findings(
    name: str, reference: str, definition: JobDefinition | None, reachable: Sequence[JobQueue]
) -> list[Finding]:
    def found(check: str, severity: Severity, detail: str) -> Finding:
        return Finding("job definition", name, check, severity, detail)

    if definition is None:
        return [found("exists", "error", f"no job definition {reference} in the account: the team's jobs fail")]
    if definition.status != "ACTIVE":
        return [found("exists", "error", f"{definition.name}:{definition.revision} is {definition.status}")]
    findings = [found("exists", "ok", f"{definition.name}:{definition.revision} ACTIVE")]
    misfits: list[str] = []
    on_demand = [
        queue.name for queue in reachable if any(environment.kind == "EC2" for environment in queue.environments)
    ]
    if definition.type == "multinode" and reachable and not on_demand:
        # A multi-node job goes to an on-demand queue (a route's own, else its fallback): one must be reachable.
        misfits.append(f"{', '.join(queue.name for queue in reachable)} (multi-node jobs run on EC2 on-demand only)")
    for queue in reachable:
        environments = [environment for environment in queue.environments if environment.kind is not None]
        if not environments or (definition.type == "multinode" and queue.name not in on_demand):
            continue
        if not any(environment.orchestration == definition.orchestration for environment in environments):
            misfits.append(
                f"{queue.name} ({definition.orchestration} definition, no {definition.orchestration} environment)"
            )
        elif not any(_platform_of(environment) in definition.platforms for environment in environments):
            misfits.append(f"{queue.name} ({'/'.join(definition.platforms)} definition, no such environment)")
    runs_on = [queue.name for queue in reachable if definition.type != "multinode" or queue.name in on_demand]
    if misfits:
        findings.append(found("fits queues", "error", f"{definition.type}; cannot run on {', '.join(misfits)}"))
    else:
        findings.append(
            found(
                "fits queues",
                "ok",
                f"{definition.type}, {'/'.join(definition.platforms)}: "
                f"{', '.join(name for name in runs_on) or 'no queue reachable'}",
            )
        )
    return findings


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,}"


def _platform_of(environment: ComputeEnvironment) -> str:
    return "FARGATE" if environment.kind in FARGATE_TYPES else "EC2"
