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
        "code 2); `batchdrop logs --node N` shows node N's log" in notes
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
    assert notes[0] == f"{summary.words()}; `batchdrop logs --node N` shows node N's log"
    records_before = job.model_copy(update={"node_ends": {}})  # tracked before node ends were kept
    assert _job_notes_of(records_before)[0].startswith("nodes: 3: 1 succeeded, 2 failed")


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


HOST_TERMINATED = "Host EC2 (instance i-0abc) terminated."


def retried_world(platform_config: PlatformConfig, max_attempts: int) -> tuple[Tracker, MemoryTable]:
    """The 3-node job of `world`, its retry strategy allowing `max_attempts`."""
    tracker, table = world(platform_config)
    table.jobs["m"] = table.jobs["m"].model_copy(update={"max_attempts": max_attempts})
    return tracker, table


def node_ended(index: int, attempts: int, *, failed: bool) -> dict[str, Any]:
    """Node `index`'s end at its attempt `attempts` (the earlier ones lost their host)."""
    view = node_view(index)
    ends = [
        attempt(
            view,
            number,
            started=at(10 * number - 7),
            stopped=at(10 * number - 1),
            exit_code=None,
            status_reason=HOST_TERMINATED,
        )
        for number in range(1, attempts)
    ]
    last = attempt(
        view,
        attempts,
        started=at(10 * attempts - 7),
        stopped=at(10 * attempts - 1),
        exit_code=None if failed else 0,
        status_reason=HOST_TERMINATED if failed else None,
    )
    return state_change(
        view,
        "FAILED" if failed else "SUCCEEDED",
        at=at(10 * attempts - 1),
        attempts=[*ends, last],
        exit_code=None if failed else 0,
    )


def job_attempts(attempts: int) -> list[dict[str, Any]]:
    return [
        attempt(node_view(0), number, started=at(10 * number - 7), stopped=at(10 * number - 1), exit_code=None)
        for number in range(1, attempts + 1)
    ]


def test_a_retried_jobs_main_node_failing_its_first_attempt_does_not_end_the_job(
    platform_config: PlatformConfig,
) -> None:
    """docs/multinode.md: `retries.attempts` retries the whole job; Batch succeeds it at attempt 2."""
    tracker, table = retried_world(platform_config, max_attempts=2)
    deliver(tracker, [state_change(job_view(), "RUNNING", at=at(3))])
    deliver(tracker, [node_ended(0, 1, failed=True)])
    assert table.jobs["m"].status == "RUNNING", "attempt 1 of 2: Batch retries the whole job"
    deliver(tracker, [state_change(job_view(), "RUNNABLE", at=at(10), attempts=job_attempts(1))])
    deliver(tracker, [*(node_ended(index, 2, failed=False) for index in range(NODES))])
    deliver(tracker, [state_change(job_view(), "SUCCEEDED", at=at(19), attempts=job_attempts(2))])
    job = table.jobs["m"]
    assert (job.status, job.failure) == ("SUCCEEDED", None)
    history = table.histories["m"]
    assert "1:node 0 FAILED" in history, "the node's failed attempt is still in the job's history"
    assert history["1:node 0 FAILED"].attempt_end is not None
    assert history["1:node 0 FAILED"].attempt_end.log_stream, "its log stream, from its attempts"


def test_a_main_nodes_failure_at_its_last_allowed_attempt_ends_the_job(platform_config: PlatformConfig) -> None:
    tracker, table = retried_world(platform_config, max_attempts=2)
    deliver(tracker, [state_change(job_view(), "RUNNING", at=at(3))])
    deliver(tracker, [node_ended(0, 2, failed=True)])
    job = table.jobs["m"]
    assert (job.status, job.attempts) == ("FAILED", 2), "its last attempt: its main node's end is the job's"


def test_a_main_nodes_failure_ends_a_job_without_retries(platform_config: PlatformConfig) -> None:
    tracker, table = retried_world(platform_config, max_attempts=1)
    deliver(tracker, [state_change(job_view(), "RUNNING", at=at(3))])
    deliver(tracker, [node_ended(0, 1, failed=True)])
    assert table.jobs["m"].status == "FAILED"


def test_the_nodes_line_counts_only_the_jobs_latest_attempts_ends(platform_config: PlatformConfig) -> None:
    """Once Batch retries the job, its nodes' ends of attempt 1 are not its nodes' outcome: Slack, `status`,
    `job.status` and the report (all `node_summary`) count the latest attempt's alone."""
    tracker, table = retried_world(platform_config, max_attempts=2)
    deliver(tracker, [state_change(job_view(), "RUNNING", at=at(3)), node_ended(0, 1, failed=True)])
    deliver(tracker, [node_ended(1, 1, failed=True)])
    summary = node_summary(table.jobs["m"])
    assert summary is not None
    assert summary.words().startswith("3 nodes: 2 failed (node 0: "), "attempt 1 is the job's latest so far"
    deliver(tracker, [state_change(job_view(), "RUNNABLE", at=at(10), attempts=job_attempts(1))])
    summary = node_summary(table.jobs["m"])
    assert summary is not None
    assert summary.words() == "3 nodes: 3 not heard from", "attempt 2 runs: attempt 1's ends are not its outcome"
    deliver(tracker, [node_ended(0, 2, failed=False), node_ended(2, 2, failed=False)])
    deliver(tracker, [state_change(job_view(), "SUCCEEDED", at=at(19), attempts=job_attempts(2))])
    job = table.jobs["m"].model_copy(update={"history": table.histories["m"]})
    summary = node_summary(job)
    assert summary is not None
    assert summary.words() == "3 nodes: 2 succeeded, 1 not heard from"
    nodes = nodes_told(job, "us-east-1")
    assert nodes is not None
    assert (nodes.succeeded, nodes.failed, nodes.failed_nodes) == (2, 0, [])
    notes = _job_notes_of(job)
    assert notes[0].startswith("3 nodes: 2 succeeded, 1 not heard from")
    assert not any(note.startswith("node 1: attempt 1 failed") for note in notes), "attempt 1's end is not told"


def test_a_child_nodes_end_alone_in_its_batch_is_kept_without_an_error(
    platform_config: PlatformConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A node's end that is not its job's (a child node's, or a main node's that Batch retries) adds no
    event of the job: nothing to apply, no failure logged."""
    tracker, table = retried_world(platform_config, max_attempts=2)
    result = tracker.track(
        Delivery(f"msg-{index}", BatchEvent.model_validate(node_ended(index, 1, failed=True))) for index in (1, 2)
    )
    assert not result.failed
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
    assert sorted(table.jobs["m"].node_ends) == ["1", "2"]


def test_a_nodes_log_stream_named_only_in_its_attempts_is_kept_in_its_history(platform_config: PlatformConfig) -> None:
    tracker, table = world(platform_config)
    event = node_ended(1, 1, failed=True)
    stream = event["detail"]["attempts"][-1]["container"]["logStreamName"]
    del event["detail"]["container"]["logStreamName"]  # Batch names it in `attempts[]` alone
    deliver(tracker, [event])
    end = table.histories["m"]["1:node 1 FAILED"].attempt_end
    assert end is not None
    assert end.log_stream == stream
    assert table.jobs["m"].node_ends["1"].log_stream == stream, "as the record keeps it"


@pytest.mark.parametrize("main", [0, 1])
def test_the_main_node_is_the_one_the_jobs_node_properties_name_when_batch_does_not_say(
    platform_config: PlatformConfig, main: int
) -> None:
    tracker, table = world(platform_config)
    ended = []
    for index in (0, 1):
        event = node_ended(index, 1, failed=True)
        event["detail"]["nodeDetails"] = {"nodeIndex": index}  # no isMainNode
        event["detail"]["nodeProperties"] = {"numNodes": NODES, "mainNode": main}
        deliver(tracker, [event])
        ended.append(table.jobs["m"].status)
    assert ended == ["FAILED" if main == 0 else "SUBMITTED", "FAILED"]
