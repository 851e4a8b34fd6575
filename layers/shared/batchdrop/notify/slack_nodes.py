"""A multi-node parallel job's nodes in its Slack message: one line that says how many ended how and which
node failed and why (`4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory`, the words
`batchdrop status` says too), and a link to each failed node's log."""

from __future__ import annotations

from batchdrop.events.contract import NodesTold
from batchdrop.notify.block_kit import MAX_REASON_CHARS, Block, clip, escape, link, pack, section


def nodes_section(nodes: NodesTold) -> Block:
    """`*Nodes* 4 nodes: 3 succeeded, node 2 failed: …` and a bullet per failed node with its log."""
    head = f"*Nodes* — {escape(clip(nodes.words, MAX_REASON_CHARS))}"
    lines = [
        f"• node {node.node}: " + (link(node.log_url, "log") if node.log_url else "no log stream reported")
        for node in nodes.failed_nodes
    ]
    if not lines:
        return section(head)
    return section(pack(lines, more=nodes.failed - len(nodes.failed_nodes), noun="failed node", head=head))


def nodes_text(nodes: NodesTold) -> str:
    """For the plain-text fallback: the line, and the first failed node's log."""
    first = next((node for node in nodes.failed_nodes if node.log_url), None)
    logs = f" Log of node {first.node}: {link(first.log_url, 'log')}." if first and first.log_url else ""
    return f" {escape(clip(nodes.words, MAX_REASON_CHARS))}.{logs}"
