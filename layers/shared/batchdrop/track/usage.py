"""What a job used: requested resources × run time (vCPU-, GPU- and GiB-hours), per attempt."""

from __future__ import annotations

from batchdrop.events.contract import Usage
from batchdrop.spec.model import Resources
from batchdrop.track.batch_events import ContainerDetail, JobDetail


def requested_usage(detail: JobDetail, seconds: float) -> Usage | None:
    """What the job used: what it asked for × its run time; a multi-node job's, every node's (each node
    range's resources × the nodes it covers)."""
    nodes = detail.nodeProperties
    if nodes is not None and nodes.nodeRangeProperties and not detail.is_node:
        total, count = Usage(), nodes.numNodes or 1
        for node_range in nodes.nodeRangeProperties:
            each = _resources([node_range.container] if node_range.container else [])
            if each is not None:
                total = add_usage(total, usage_of(each, seconds * node_range.count(count)))
        return total
    requested = requested_resources(detail)
    return usage_of(requested, seconds) if requested is not None else None


def requested_resources(detail: JobDetail) -> Resources | None:
    """What the job asked for, from the event (the request's overrides are in it); summed over a
    multi-container job's containers."""
    containers = [detail.container] if detail.container else []
    if detail.ecsProperties:
        containers += [c for task in detail.ecsProperties.taskProperties for c in task.containers]
    return _resources(containers)


def _resources(containers: list[ContainerDetail]) -> Resources | None:
    vcpus, memory, gpus = 0.0, 0, 0
    for container in containers:
        wanted = {item["type"]: item["value"] for item in container.resourceRequirements}
        vcpus += float(wanted.get("VCPU", container.vcpus or 0))
        memory += int(float(wanted.get("MEMORY", container.memory or 0)))
        gpus += int(wanted.get("GPU", 0))
    if vcpus <= 0 or memory < 128:
        return None
    return Resources(vcpus=vcpus, memory_mib=memory, gpus=gpus)


def usage_of(resources: Resources, seconds: float) -> Usage:
    hours = seconds / 3600
    return Usage(
        vcpu_hours=resources.vcpus * hours,
        gpu_hours=resources.gpus * hours,
        memory_gib_hours=resources.memory_mib / 1024 * hours,
    )


def add_usage(left: Usage, right: Usage) -> Usage:
    return Usage(
        vcpu_hours=left.vcpu_hours + right.vcpu_hours,
        gpu_hours=left.gpu_hours + right.gpu_hours,
        memory_gib_hours=left.memory_gib_hours + right.memory_gib_hours,
    )
