"""A multi-node parallel job's nodes (docs/multinode.md): `nodes: {count: N}` on a step or a single job.

Every node runs the same container with the step's `resources`, each on its own instance (Batch runs one
node per instance); node 0 is the main node, whose end is the job's. Batch tells each node its rank and
the main node's address in its environment (AWS_BATCH_JOB_NODE_INDEX, AWS_BATCH_JOB_MAIN_NODE_INDEX,
AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS, AWS_BATCH_JOB_NUM_NODES).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MIN_NODES = 2
MAX_NODES = 1000
"""Batch runs at most 1,000 nodes in one job (its default limit of instances in an ECS cluster)."""


class Nodes(BaseModel):
    """How many nodes a multi-node parallel job runs."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    count: Annotated[
        int,
        Field(
            ge=MIN_NODES,
            le=MAX_NODES,
            description="How many nodes, 2 to 1,000, each with the step's `resources` on an instance of its own; "
            "node 0 is the main node, whose end is the job's. Required.",
            examples=[4],
        ),
    ]
