"""A multi-node parallel job tracked (docs/multinode.md): its nodes' events in any order, each node's end
(status, exit code, log stream) kept in its job's history and on its record (the same whatever the order
or redelivery), its usage every node's, and `status`, `job.status` and Slack saying which node failed and
why."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from batchdrop_local.state_changes import attempt, sample_job, state_change

from batchdrop.events.contract import JobStatusChanged, NodesTold
from batchdrop.gateways.log_links import log_url
from batchdrop.limits import NODE_END_BYTES, NODE_FAILURE_CHARS
from batchdrop.notify.slack_blocks import render
from batchdrop.platform.config import PlatformConfig
from batchdrop.publish.nodes import nodes_told
from batchdrop.publish.teller import RecordChange
from batchdrop.spec.model import Resources
from batchdrop.store.node_ends import node_summary
from batchdrop.store.records import JobRecord, NodeEnd
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery
from batchdrop.track.tracker import Tracker
from batchdrop_cli.run_views import RunView
from batchdrop_cli.stack import _job_notes
from tests.recordkit import at, job_record, run_of_jobs
from tests.unit.fakes import FixedConfig, MemoryTable
from tests.unit.test_telling import FakePublisher, moved, stored_job, teller
from tests.unit.test_telling import job as telling_job

NODES = 3
RESOURCES = [{"type": "VCPU", "value": "8"}, {"type": "MEMORY", "value": "16384"}, {"type": "GPU", "value": "1"}]


def world(platform_config: PlatformConfig) -> tuple[Tracker, MemoryTable]:
    table = MemoryTable()
    job = job_record("m", "train").model_copy(
        update={"nodes": NODES, "resources": Resources(vcpus=8, memory_mib=16384, gpus=1)}
    )
    table.write_new([run_of_jobs([job])], [job])
    return Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60)), table


def job_view() -> dict[str, Any]:
    view = sample_job("m", name="p-train-r1", gpus=0)
    view["tags"]["batchdrop:run-id"] = "r1"
    container = view.pop("container")
    view["nodeProperties"] = {
        "numNodes": NODES,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:", "container": {**container, "resourceRequirements": RESOURCES}}],
    }
    return view


def node_view(index: int) -> dict[str, Any]:
    view = sample_job(f"m#{index}", name="p-train-r1", gpus=0)
    view["tags"]["batchdrop:run-id"] = "r1"
    view["nodeDetails"] = {"nodeIndex": index, "isMainNode": index == 0}
    view["container"]["resourceRequirements"] = RESOURCES
    return view


def events(failing: int | None) -> list[dict[str, Any]]:
    """The job's life and its nodes' ends: node `failing` exits 2 and the main node 1 with it."""
    told = [state_change(job_view(), "RUNNING", at=at(3))]
    codes = {index: 2 if index == failing else 1 if index == 0 and failing is not None else 0 for index in range(NODES)}
    for index, code in codes.items():
        view = node_view(index)
        end = attempt(view, 1, started=at(3), stopped=at(9), exit_code=code)
        told.append(state_change(view, "FAILED" if code else "SUCCEEDED", at=at(9), attempts=[end], exit_code=code))
    main = attempt(node_view(0), 1, started=at(3), stopped=at(9), exit_code=codes[0])
    status = "FAILED" if codes[0] else "SUCCEEDED"
    told.append(state_change(job_view(), status, at=at(9), attempts=[main]))
    return told


def deliver(tracker: Tracker, told: list[dict[str, Any]]) -> None:
    tracker.track(Delivery(f"msg-{index}", BatchEvent.model_validate(event)) for index, event in enumerate(told))


@pytest.mark.parametrize("order", list(itertools.permutations(range(3)))[:4])
def test_every_node_is_counted_and_kept_in_any_order(platform_config: PlatformConfig, order: tuple[int, ...]) -> None:
    tracker, table = world(platform_config)
    told = events(failing=None)
    nodes = [told[1 + index] for index in order]
    deliver(tracker, [told[-1], *nodes, told[0]])  # the job's end first, its nodes' after, RUNNING last
    job = table.jobs["m"]
    assert job.status == "SUCCEEDED"
    assert job.usage is not None
    assert job.usage.vcpu_hours == pytest.approx(NODES * 8 * 6 / 60), "3 nodes × 8 vCPUs for 6 minutes"
    assert job.usage.gpu_hours == pytest.approx(NODES * 6 / 60)
    ends = {
        t.attempt_end.node: t.attempt_end
        for t in table.histories["m"].values()
        if t.attempt_end and t.attempt_end.node is not None
    }
    assert sorted(ends) == [0, 1, 2]
    assert all(end.exit_code == 0 and end.log_stream for end in ends.values())
    assert len({end.log_stream for end in ends.values()}) == NODES


def test_status_says_which_node_failed_and_why(platform_config: PlatformConfig) -> None:
    tracker, table = world(platform_config)
    deliver(tracker, events(failing=2))
    job = table.jobs["m"].model_copy(update={"history": table.histories["m"]})
    assert job.status == "FAILED"
    notes = _job_notes_of(job)
    assert (
        "3 nodes: 1 succeeded, 2 failed (node 0: the program exited with code 1; node 2: the program exited with "
        "code 2); node 0 is the main node, `batchdrop logs --node N` shows node N's log" in notes
    )
    failed = [note for note in notes if note.startswith("node ")]
    assert [note.split(":")[0] for note in failed] == ["node 0", "node 2"]
    assert failed[1] == "node 2: attempt 1 failed: the program exited with code 2 (Essential container in task exited)"


def _job_notes_of(job: JobRecord) -> list[str]:
    """What `status` says under the job's step, for a run of just that job."""
    return _job_notes(RunView(run=run_of_jobs([job]), jobs=[job]), job)


def test_node_ends_kept_on_the_record_are_the_same_in_any_order_and_redelivered(
    platform_config: PlatformConfig,
) -> None:
    told = events(failing=2)
    kept = []
    for order in [(0, 1, 2, 3, 4), (4, 3, 2, 1, 0), (2, 4, 0, 3, 1)]:
        tracker, table = world(platform_config)
        shuffled = [told[index] for index in order]
        deliver(tracker, shuffled[:3])
        deliver(tracker, shuffled)  # redelivered, with the rest
        deliver(tracker, shuffled[1:2])  # and one alone
        kept.append(table.jobs["m"].node_ends)
    assert kept[0] == kept[1] == kept[2]
    ends = kept[0]
    assert sorted(ends) == ["0", "1", "2"]
    assert (ends["2"].status, ends["2"].exit_code) == ("FAILED", 2)
    assert ends["2"].log_stream, "a failed node's log stream is kept"
    assert ends["1"].status == "SUCCEEDED"
    summary = node_summary(table.jobs["m"])
    assert summary is not None
    assert summary.words() == (
        "3 nodes: 1 succeeded, 2 failed (node 0: the program exited with code 1; "
        "node 2: the program exited with code 2)"
    )


def test_a_batchs_node_ends_are_one_write_and_ends_kept_already_none(platform_config: PlatformConfig) -> None:
    tracker, table = world(platform_config)
    told = events(failing=2)
    deliver(tracker, told)
    assert table.node_end_writes == 1, "three nodes' ends in one tracking batch: one write"
    deliver(tracker, told)  # redelivered: the record read already keeps every one
    deliver(tracker, told[1:3])
    assert table.node_end_writes == 1, "a redelivered end costs no write"


def test_a_later_attempts_node_end_replaces_an_earlier_and_never_the_other_way(platform_config: PlatformConfig) -> None:
    tracker, table = world(platform_config)
    first = node_view(1)
    end_1 = attempt(first, 1, started=at(3), stopped=at(9), exit_code=137, reason="OutOfMemoryError: Container killed")
    failed_1 = state_change(first, "FAILED", at=at(9), attempts=[end_1], exit_code=137)
    end_2 = attempt(first, 2, started=at(10), stopped=at(19), exit_code=0)
    succeeded_2 = state_change(first, "SUCCEEDED", at=at(19), attempts=[end_1, end_2], exit_code=0)
    deliver(tracker, [succeeded_2])
    deliver(tracker, [failed_1])  # late: attempt 1's end
    kept = table.jobs["m"].node_ends["1"]
    assert (kept.attempt, kept.status) == (2, "SUCCEEDED")


def test_a_failed_4_node_job_tells_its_nodes_with_the_failed_nodes_log(platform_config: PlatformConfig) -> None:
    table = MemoryTable()
    job = job_record("m", "train").model_copy(update={"nodes": 4})
    table.write_new([run_of_jobs([job])], [job])
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60))
    told = []
    for index in range(4):
        view = node_view(index)
        code = 137 if index == 2 else 0
        reason = "OutOfMemoryError: Container killed due to memory usage" if code else None
        end = attempt(view, 1, started=at(3), stopped=at(9), exit_code=code, reason=reason)
        told.append(state_change(view, "FAILED" if code else "SUCCEEDED", at=at(9), attempts=[end], exit_code=code))
    deliver(tracker, told)
    nodes = nodes_told(table.jobs["m"], "eu-west-1")
    assert nodes is not None
    assert nodes.words == "4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory"
    assert (nodes.count, nodes.succeeded, nodes.failed) == (4, 3, 1)
    (node,) = nodes.failed_nodes
    assert node.node == 2
    assert node.failure_class == "out_of_memory"
    assert node.log_url is not None
    assert node.log_url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/")
    assert (table.jobs["m"].node_ends["2"].log_stream or "").replace("/", "$252F") in node.log_url
    text = render(failed_job_event(table.jobs["m"], nodes)).text
    assert "4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory" in text


def failed_job_event(job: Any, nodes: NodesTold) -> JobStatusChanged:
    return JobStatusChanged(
        event_id="e",
        time=at(9),
        team=job.team,
        run_id=job.run_id,
        source_uri="s3://b/incoming/vision/x.yaml",
        job_id=job.job_id,
        job_name=job.job_name,
        step=job.step,
        queue=job.queue,
        hardware=job.hardware,
        console_url="https://us-east-1.console.aws.amazon.com/batch/home",
        status="failed",
        failure_class="out_of_memory",
        exit_code=137,
        nodes=nodes,
    )


def test_status_says_the_nodes_line_slack_says(platform_config: PlatformConfig) -> None:
    tracker, table = world(platform_config)
    deliver(tracker, events(failing=2))
    job = table.jobs["m"].model_copy(update={"history": table.histories["m"]})
    notes = _job_notes_of(job)
    summary = node_summary(job)
    assert summary is not None
    assert notes[0] == f"{summary.words()}; node 0 is the main node, `batchdrop logs --node N` shows node N's log"
    records_before = job.model_copy(update={"node_ends": {}})  # tracked before node ends were kept
    assert _job_notes_of(records_before)[0].startswith("nodes: 3 (node 0 the main node): 1 succeeded, 2 failed")


def test_a_node_end_too_long_to_keep_drops_its_log_stream_not_the_node() -> None:
    end = NodeEnd(
        attempt=1, status="FAILED", exit_code=1, failure="x" * 500, log_group="/g" * 40, log_stream="s" * 180
    ).fitted()
    assert len(json.dumps(end.stored()).encode()) <= NODE_END_BYTES
    assert end.log_stream is None
    assert end.failure is not None
    assert len(end.failure) == NODE_FAILURE_CHARS
    assert set(end.stored()) == {"a", "s", "x", "w"}, "stored with short names"


def out_of_memory_end(log_stream: str) -> NodeEnd:
    """A node's first attempt's end, out of memory, as the job's record keeps it."""
    return NodeEnd(
        attempt=1,
        status="FAILED",
        exit_code=137,
        failure_class="out_of_memory",
        failure="out of memory (exit code 137)",
        log_stream=log_stream,
    )


def test_the_failed_jobs_status_event_carries_its_nodes_as_stored() -> None:
    nodes = {
        "0": NodeEnd(attempt=1, status="SUCCEEDED", exit_code=0),
        "2": out_of_memory_end("ddp/default/abc"),
    }
    before, after = moved(telling_job(nodes=4), "RUNNING", "FAILED", failure_class="out_of_memory", failure="oom")
    stored = stored_job(after) | {"node_ends": {node: end.stored() for node, end in nodes.items()}}  # as DynamoDB
    publisher = FakePublisher()
    teller(publisher).tell([RecordChange("1", stored_job(before), stored)])
    *_, event = publisher.published  # running, then failed
    assert isinstance(event, JobStatusChanged)
    assert event.nodes is not None
    assert event.nodes.words == "4 nodes: 1 succeeded, node 2 failed: exit code 137 — out of memory, 2 not heard from"
    assert [node.node for node in event.nodes.failed_nodes] == [2]
    assert event.nodes.failed_nodes[0].log_url == log_url("us-east-1", "/aws/batch/job", "ddp/default/abc")
