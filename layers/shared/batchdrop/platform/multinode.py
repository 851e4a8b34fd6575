"""Multi-node parallel jobs (docs/multinode.md): where they may run, whether they fit, how they are asked for.

Batch runs a multi-node job only on EC2 on-demand capacity (never spot, never Fargate), one node per
instance, and only with a multi-node job definition. So a job with `nodes` goes to the first on-demand
queue its routes offer (a route's queue, else its on-demand `fallback`); its nodes × vCPUs must fit in
the queue's environments; and its container overrides apply to every node (`targetNodes` `0:`).
"""

from __future__ import annotations

from typing import Any

from batchdrop.platform.config import PlatformConfig, QueueConfig, TeamConfig
from batchdrop.spec.model import Finding, Hardware, JobDraft
from batchdrop.units import number

ALL_NODES = "0:"
"""A node range from node 0 to the last: every node of the job."""


def multinode_queue(config: PlatformConfig, team: str, environment: str, hardware: Hardware) -> str | None:
    """The queue a multi-node job goes to: of the routes that take it, in order, the first on-demand queue
    (the route's own, else its fallback); None when no route offers one."""
    for route in config.routes:
        if not route.when.matches(team, environment, hardware):
            continue
        for name in (route.queue, route.fallback):
            queue = config.queues.get(name) if name else None
            if queue is not None and queue.capacity == "on_demand":
                return name
    return None


def definition_findings(draft: JobDraft, team: str, team_config: TeamConfig) -> list[Finding]:
    """A job with `nodes` needs a multi-node job definition, and a job without one must not name one: Batch
    refuses either mismatch at submission."""
    alias, where = draft.job_definition, draft.where("job_definition")
    if alias not in team_config.job_definitions:
        return []
    multinode = alias in team_config.multinode_job_definitions
    if draft.settings.nodes is not None and not multinode:
        others = ", ".join(team_config.multinode_job_definitions) or "none"
        return [
            (
                where,
                "not_multinode_definition",
                f"`{alias}` is not a multi-node job definition, and a job with `nodes` needs one "
                f"(team `{team}`'s: {others})",
            )
        ]
    if draft.settings.nodes is None and multinode:
        return [
            (
                where,
                "multinode_definition_without_nodes",
                f"`{alias}` is a multi-node job definition: add `nodes: {{count: N}}`, or name a single-node one",
            )
        ]
    return []


def fit_findings(draft: JobDraft, queue_name: str, queue: QueueConfig) -> list[Finding]:
    """The nodes together against the queue's environments (each node alone is checked like any job)."""
    nodes = draft.settings.nodes
    if nodes is None or queue.max_environment_vcpus is None:
        return []
    wanted = nodes.count * draft.resources.vcpus
    if wanted <= queue.max_environment_vcpus:
        return []
    return [
        (
            (*draft.where("nodes"), "count"),
            "exceeds_queue",
            f"{nodes.count} nodes × {number(draft.resources.vcpus)} vCPUs = {number(wanted)} vCPUs; the "
            f"environments of queue `{queue_name}` run at most {number(queue.max_environment_vcpus)} at once",
        )
    ]


def node_request(request: dict[str, Any], count: int) -> dict[str, Any]:
    """A SubmitJob request's container overrides moved to every node of a `count`-node job (`nodeOverrides`):
    Batch takes no `containerOverrides` on a multi-node job."""
    nodes = {
        "numNodes": count,
        "nodePropertyOverrides": [{"targetNodes": ALL_NODES, "containerOverrides": request["containerOverrides"]}],
    }
    return {
        ("nodeOverrides" if key == "containerOverrides" else key): (nodes if key == "containerOverrides" else value)
        for key, value in request.items()
    }
