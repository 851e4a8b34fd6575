"""A multi-node parallel job's nodes as its record keeps them (`JobRecord.node_ends`): the conditional
write that keeps a batch's ends (`node_ends_update`, made by `JobStates.keep_node_ends`), and the ends
summed up: how many ended how, which failed and why, in one line that Slack, `job.status` and `batchdrop
status` all say: `4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchdrop.store.items import serialize
from batchdrop.store.records import TERMINAL, JobRecord, NodeEnd

NODES_IN_WORDS = 3
"""Failed nodes the one line describes, then "and N more"."""
NODE_ENDS_PER_WRITE = 25
"""Node ends one UpdateItem sets at most: each adds about 100 characters to its expressions, and DynamoDB
refuses an expression over 4 KB."""


@dataclass(frozen=True)
class NodeSummary:
    count: int
    """The job's nodes."""
    attempt: int
    """The job's attempt these ends are of (`latest_attempt`): its nodes' ends of earlier ones are left out."""
    succeeded: int
    failed: list[tuple[int, NodeEnd]]
    """The failed nodes with their ends, lowest index first."""

    @property
    def unheard(self) -> int:
        return max(self.count - self.succeeded - len(self.failed), 0)

    def words(self) -> str:
        """`4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory`."""
        parts = []
        if self.succeeded:
            parts.append("all succeeded" if self.succeeded == self.count else f"{self.succeeded:,} succeeded")
        if len(self.failed) == 1:
            node, end = self.failed[0]
            parts.append(f"node {node} failed: {node_failure(end)}")
        elif self.failed:
            described = "; ".join(f"node {node}: {node_failure(end)}" for node, end in self.failed[:NODES_IN_WORDS])
            more = len(self.failed) - NODES_IN_WORDS
            parts.append(f"{len(self.failed):,} failed ({described}{f'; and {more:,} more' if more > 0 else ''})")
        if self.unheard:
            parts.append(f"{self.unheard:,} not heard from")
        return f"{self.count:,} nodes: " + ", ".join(parts)


def node_summary(job: JobRecord) -> NodeSummary | None:
    """The job's nodes summed up, as of its latest attempt (a node whose end of it is not heard yet is not
    heard from); None for a job that is not multi-node, or whose record keeps no node end (tracked before
    node ends were kept: its history has them)."""
    if not job.nodes or not job.node_ends:
        return None
    kept = sorted((int(node), end) for node, end in job.node_ends.items() if node.isdigit())
    attempt = latest_attempt(job)
    ends = [(node, end) for node, end in kept if end.attempt == attempt]
    succeeded = sum(end.status == "SUCCEEDED" for _, end in ends)
    failed = [(node, end) for node, end in ends if end.status == "FAILED"]
    return NodeSummary(count=max(job.nodes, len(kept)), attempt=attempt, succeeded=succeeded, failed=failed)


def latest_attempt(job: JobRecord) -> int:
    """The multi-node job's latest attempt: the one it runs (`attempts` counts the finished ones), or its last
    once it has ended; or a later one its nodes' ends tell of before its own events do. Batch retries the
    whole job (`retries.attempts`), so its nodes' ends of an earlier attempt are not its nodes' outcome."""
    current = job.attempts if job.status in TERMINAL else job.attempts + 1
    return max([current, *(end.attempt for end in job.node_ends.values())])


def node_failure(end: NodeEnd) -> str:
    """A failed node's end in a few words: `exit code 137 — out of memory`, `the program exited with code 2`."""
    words = end.failure or end.failure_class or "failed"
    if end.exit_code is None:
        return words
    words = words.removesuffix(f" (exit code {end.exit_code})")
    return words if f"code {end.exit_code}" in words else f"exit code {end.exit_code} — {words}"


def node_ends_update(ends: Mapping[int, NodeEnd]) -> dict[str, Any]:
    """UpdateItem's arguments that set these nodes' ends in a job record's `node_ends` (fitted, short names)
    if the record exists and keeps, for each, no end or an earlier attempt's: all of them or none."""
    names = {f"#n{position}": str(node) for position, node in enumerate(ends)}
    values: dict[str, Any] = {}
    sets, conditions = [], ["attribute_exists(PK)"]
    for position, end in enumerate(ends.values()):
        values |= {f":e{position}": end.fitted().stored(), f":a{position}": end.attempt}
        sets.append(f"node_ends.#n{position} = :e{position}")
        conditions.append(
            f"(attribute_not_exists(node_ends.#n{position}) OR node_ends.#n{position}.a < :a{position})"
        )  # `a`: NodeEnd.attempt as stored; the condition `NodeEnd.replaces` says in Python
    return {
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialize(values),
    }
