"""A multi-node parallel job tracked (docs/multinode.md): its nodes' events in any order, each node's end
(status, exit code, log stream) kept in its job's history, its usage every node's, and `status` saying
which node failed and why."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import pytest
from batchdrop_local.state_changes import attempt, sample_job, state_change

from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.model import Resources
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery
from batchdrop.track.tracker import Tracker
from batchdrop_cli.stack import _job_notes
from tests.recordkit import at, job_record, run_of_jobs
from tests.unit.fakes import FixedConfig, MemoryTable

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
        "nodes: 3 (node 0 the main node): 1 succeeded, 2 failed; `batchdrop logs --node N` shows node N's log" in notes
    )
    failed = [note for note in notes if note.startswith("node ")]
    assert [note.split(":")[0] for note in failed] == ["node 0", "node 2"]
    assert failed[1] == "node 2: attempt 1 failed: the program exited with code 2 (Essential container in task exited)"


def _job_notes_of(job: Any) -> list[str]:
    class View:
        run = type("Run", (), {"jobs": []})()
        standing: ClassVar[dict[str, str]] = {}

        def story(self, _job: Any) -> str:
            return ""

    return _job_notes(View(), job)  # type: ignore[arg-type]
