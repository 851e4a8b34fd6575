"""A multi-node parallel job's nodes as `job.status` tells them (`NodesTold`): the counts, the first failed
nodes with their failure and log link, and the line Slack and `batchdrop status` say."""

from __future__ import annotations

from batchdrop.events.contract import MAX_TOLD_NODES, NodesTold, NodeTold
from batchdrop.gateways.log_links import stream_url
from batchdrop.store.node_ends import node_summary
from batchdrop.store.records import JobRecord, NodeEnd


def nodes_told(record: JobRecord, region: str) -> NodesTold | None:
    """The job's nodes as its record keeps them now; None for a job that is not multi-node, or whose record
    keeps no node end."""
    summary = node_summary(record)
    if summary is None:
        return None
    return NodesTold(
        count=summary.count,
        succeeded=summary.succeeded,
        failed=len(summary.failed),
        failed_nodes=[_node(node, end, region) for node, end in summary.failed[:MAX_TOLD_NODES]],
        words=summary.words(),
    )


def _node(node: int, end: NodeEnd, region: str) -> NodeTold:
    return NodeTold(
        node=node,
        status="failed" if end.status == "FAILED" else "succeeded",
        attempt=end.attempt,
        exit_code=end.exit_code,
        failure_class=end.failure_class,  # type: ignore[arg-type]  # classify's
        failure=end.failure,
        log_url=stream_url(region, end.log_group, end.log_stream),
    )
