"""A multi-node job's node ends kept on its record, against DynamoDB (the emulator): one conditional write
for a batch's ends that keeps each node's latest attempt, in any order, redelivered or not, whichever
writer gets there first; and records written before node ends were kept (no map to set a node in) get
theirs too."""

from __future__ import annotations

from typing import Any

from batchdrop_local.state_changes import attempt, sample_job, state_change

from batchdrop.store.items import job_item
from batchdrop.store.job_states import JobStates
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import NodeEnd
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery, TrackResult
from batchdrop.track.nodes import NodeEvents
from tests.integration.conftest import LocalStack
from tests.recordkit import at, job_record

FAILED = NodeEnd(attempt=1, status="FAILED", exit_code=137, failure_class="out_of_memory", log_stream="ddp/default/a")
RETRIED = NodeEnd(attempt=2, status="SUCCEEDED", exit_code=0, log_stream="ddp/default/b")


def test_each_nodes_latest_end_is_kept_once_in_any_order(local_stack: LocalStack) -> None:
    dynamodb = local_stack.client("dynamodb")
    job = job_record("mnp-1", "train").model_copy(update={"nodes": 4})
    dynamodb.put_item(TableName=local_stack.table, Item=job_item(job))
    states = JobStates(dynamodb, local_stack.table)

    assert states.keep_node_ends("mnp-1", {2: RETRIED}) == 1
    assert states.keep_node_ends("mnp-1", {2: FAILED}) == 0, "an earlier attempt's end, late: not kept"
    assert states.keep_node_ends("mnp-1", {2: RETRIED}) == 0, "the same end again: nothing written"
    assert states.keep_node_ends("mnp-1", {3: FAILED}) == 1
    assert states.keep_node_ends("no-such-job", {1: FAILED, 2: FAILED}) == 0

    stored = RecordQueries(dynamodb, local_stack.table).get_job("mnp-1")
    assert stored is not None
    assert stored.node_ends == {"2": RETRIED, "3": FAILED}


def test_a_record_written_before_node_ends_were_kept_gets_its_map(local_stack: LocalStack) -> None:
    dynamodb = local_stack.client("dynamodb")
    job = job_record("mnp-old", "train").model_copy(update={"nodes": 2})
    item = job_item(job)
    assert item.pop("node_ends") == {"M": {}}
    dynamodb.put_item(TableName=local_stack.table, Item=item)

    assert JobStates(dynamodb, local_stack.table).keep_node_ends("mnp-old", {1: FAILED}) == 1

    stored = RecordQueries(dynamodb, local_stack.table).get_job("mnp-old")
    assert stored is not None
    assert stored.node_ends == {"1": FAILED}


def test_a_batchs_ends_are_kept_whole_when_another_writer_kept_some_first(local_stack: LocalStack) -> None:
    dynamodb = local_stack.client("dynamodb")
    job = job_record("mnp-many", "train").model_copy(update={"nodes": 60})
    dynamodb.put_item(TableName=local_stack.table, Item=job_item(job))
    states = JobStates(dynamodb, local_stack.table)
    assert states.keep_node_ends("mnp-many", {7: RETRIED, 40: RETRIED}) == 2  # another instance, first

    ends = dict.fromkeys(range(60), FAILED)  # node 7's and 40's are an earlier attempt's: kept already
    assert states.keep_node_ends("mnp-many", ends) == 58, "every other node's, past one write's 25 too"

    stored = RecordQueries(dynamodb, local_stack.table).get_job("mnp-many")
    assert stored is not None
    assert stored.node_ends == {str(node): RETRIED if node in {7, 40} else FAILED for node in range(60)}


def test_a_batch_of_100_nodes_ends_is_4_writes_and_its_redelivery_none(local_stack: LocalStack) -> None:
    dynamodb = local_stack.client("dynamodb")
    job = job_record("mnp-100", "train").model_copy(update={"nodes": 100})
    dynamodb.put_item(TableName=local_stack.table, Item=job_item(job))
    nodes = NodeEvents(table=JobStates(dynamodb, local_stack.table))
    group = []
    for index in range(100):
        view = sample_job(f"mnp-100#{index}", gpus=0)
        view["nodeDetails"] = {"nodeIndex": index, "isMainNode": index == 0}
        code = 137 if index == 7 else 0
        end = attempt(view, 1, started=at(3), stopped=at(9), exit_code=code)
        told = state_change(view, "FAILED" if code else "SUCCEEDED", at=at(9), attempts=[end], exit_code=code)
        group.append(Delivery(f"m{index}", BatchEvent.model_validate(told)))
    updates = {"count": 0}

    def count(**_: Any) -> None:
        updates["count"] += 1

    dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", count)
    nodes.apply("mnp-100", group, TrackResult())
    assert updates["count"] == 4, "100 ends, 25 to a write"
    nodes.apply("mnp-100", group, TrackResult())
    assert updates["count"] == 4, "the record read already keeps them: nothing written"

    stored = RecordQueries(dynamodb, local_stack.table).get_job("mnp-100")
    assert stored is not None
    assert len(stored.node_ends) == 100
    assert stored.node_ends["7"].failure_class == "out_of_memory"
