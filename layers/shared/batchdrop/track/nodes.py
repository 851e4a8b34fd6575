"""Multi-node parallel jobs' nodes: events of jobs `<job id>#<node index>`, with `nodeDetails`.

A node is not a record of its own, and is not counted like an array child: Batch fills the job's own
status, reason and exit code from its main node, and sends the job's own events too. So:

- **every node's end** (SUCCEEDED or FAILED) joins its job's history as a transition `node <i> FAILED`
  (or SUCCEEDED) carrying the node's end (`AttemptEnd` with `node`: reason, exit code, failure in
  words): a node's failure reaches its job, and `status` can say which node failed and why, even when
  the main node's own end says only that it lost a peer;
- and is **kept on the job's record** too, compact (`JobRecord.node_ends`: status, exit code, failure,
  log stream, by node): each node's latest attempt's end, whatever order the ends come in and however
  often. The ends the record (read already, strongly consistent) does not keep yet are written in one
  conditional write for the batch, so a redelivered end writes nothing. Nodes are handled before the
  jobs of their batch, so a job's end told with its nodes' carries them to `job.status` and Slack;
- **the main node's end** (`nodeDetails.isMainNode`; else the job's `nodeProperties.mainNode` if the event
  carries it; else node 0) is also applied as the job's own end when it is the job's end: a success, or a
  failure at the last attempt the job's retry strategy allows (`JobRecord.max_attempts`). Whichever of it
  and the job's own event comes first ends the job (a finished job stays finished), so the job ends and is
  told once even if its own end event is late. A failure at an earlier attempt is only a node's end: Batch
  retries the whole job (`retries.attempts`), and the job's own events tell its retry and its end;
- a node's **other statuses** are counted (`NodeEvents`) and skipped: the job's own events tell them.
"""

from __future__ import annotations

from batchdrop.gateways.log_links import DEFAULT_LOG_GROUP
from batchdrop.store.records import TERMINAL, AttemptEnd, NodeEnd, Transition
from batchdrop.track.batch_events import BatchEvent, JobDetail, NodeProperties, NodeRange, epoch_ms, log_streams
from batchdrop.track.batches import Delivery, TrackResult, not_ours
from batchdrop.track.failures import classify
from batchdrop.track.ports import TrackStore


class NodeEvents:
    """Turns a job's node events into history entries of the job, and its main node's end into the job's."""

    def __init__(self, *, table: TrackStore) -> None:
        self.table = table

    def apply(self, job_id: str, group: list[Delivery], result: TrackResult) -> tuple[list[Transition], list[Delivery]]:
        """The transitions to add to the job's history, and the main node's ends as deliveries of the job's
        own events (to be applied with them)."""
        record = self.table.get_job(job_id)
        if record is None:
            not_ours(group[0].event.detail, len(group), result)
            return [], []
        result.counts["NodeEvents"] += len(group)
        transitions: list[Transition] = []
        main: list[Delivery] = []
        ends: dict[int, NodeEnd] = {}
        for delivery in group:
            event = delivery.event
            if event.detail.status not in TERMINAL:
                continue
            transitions.append(node_end(event))
            end, node = kept_end(event), event.detail.node_index
            if end.replaces(ends.get(node)) and end.replaces(record.node_ends.get(str(node))):
                ends[node] = end
            if is_main_node(event) and ends_job(event, record.max_attempts):
                # as the job's own end: its usage is every node's (the main node's container × its nodes)
                nodes = NodeProperties(
                    numNodes=record.nodes or 1, nodeRangeProperties=[NodeRange(container=event.detail.container)]
                )
                detail = event.detail.model_copy(update={"jobId": job_id, "nodeDetails": None, "nodeProperties": nodes})
                main.append(Delivery(delivery.message_id, event.model_copy(update={"detail": detail})))
        if ends:  # on the record too, for Slack and `status`: those it does not keep yet, in one write
            self.table.keep_node_ends(job_id, ends)
        return transitions, main


def is_main_node(event: BatchEvent) -> bool:
    detail = event.detail
    if detail.nodeDetails is not None and detail.nodeDetails.isMainNode is not None:
        return detail.nodeDetails.isMainNode
    main = detail.nodeProperties.mainNode if detail.nodeProperties else None
    return detail.node_index == (main if main is not None else 0)


def ends_job(event: BatchEvent, max_attempts: int) -> bool:
    """Whether the main node's end is its job's: a success, or a failure Batch will not retry (its attempts
    are all the job's retry strategy allows; Batch restarts every node for the next one)."""
    return event.detail.status == "SUCCEEDED" or max(1, event.detail.attempt_count) >= max(1, max_attempts)


def kept_end(event: BatchEvent) -> NodeEnd:
    """A node's end as its job's record keeps it (`JobRecord.node_ends`): compact, its log stream with it."""
    detail = event.detail
    failure = classify(detail) if detail.status == "FAILED" else None
    group, stream = last_log_stream(detail)
    return NodeEnd(
        attempt=max(1, detail.attempt_count),
        status="FAILED" if detail.status == "FAILED" else "SUCCEEDED",
        exit_code=detail.exit_code,
        failure_class=failure.kind if failure else None,
        failure=failure.words if failure else None,
        log_group=None if group == DEFAULT_LOG_GROUP else group,
        log_stream=stream,
    )


def last_log_stream(detail: JobDetail) -> tuple[str | None, str | None]:
    """The node's latest attempt's log group and stream: from its container, or only from its `attempts[]`."""
    streams = log_streams(detail)
    return (streams[-1][2], streams[-1][3]) if streams else (None, None)


def node_end(event: BatchEvent) -> Transition:
    """A node's end, as a transition of its job's history (keyed apart from the job's own statuses)."""
    detail = event.detail
    node = detail.node_index
    failure = classify(detail) if detail.status == "FAILED" else None
    end = AttemptEnd(
        attempt=max(1, detail.attempt_count),
        node=node,
        stopped_at=epoch_ms(detail.stoppedAt),
        status_reason=detail.statusReason or detail.last_attempt_reason,
        exit_code=detail.exit_code,
        reason=detail.container_reason,
        failure_class=failure.kind if failure else None,
        failure=failure.words if failure else None,
        log_stream=last_log_stream(detail)[1],
    )
    return Transition(
        status=f"node {node} {detail.status}",
        at=event.time,
        reason=failure.words if failure else detail.statusReason,
        attempt=detail.attempt_count,
        attempt_end=end,
    )
