"""A failed array child's log stream, kept in its array's children item for the report's link: added once,
when the merge first shows the child FAILED, whatever the events' order or how often they come; only the
lowest `limits.FAILED_CHILD_LOGS` indices; none for a child that never started."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from batchdrop_local.state_changes import attempt, log_stream, state_change

from batchdrop.limits import FAILED_CHILD_LOGS
from batchdrop.platform.config import PlatformConfig
from batchdrop.track.tracker import Tracker
from tests.recordkit import at, job_record
from tests.unit.fakes import FixedConfig, MemoryTable
from tests.unit.test_tracker import batch_view, deliver

SIZE = 40


@pytest.fixture
def array(platform_config: PlatformConfig) -> tuple[Tracker, MemoryTable]:
    table = MemoryTable()
    table.write_new([], [job_record("arr", "sweep", array_size=SIZE)])
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60))
    return tracker, table


def child_view(index: int) -> dict[str, Any]:
    view = {**batch_view(job_record("arr", "sweep", array_size=SIZE)), "jobId": f"arr:{index}"}
    view["arrayProperties"] = {"index": index}
    return view


def child_end(index: int, *, status: str = "FAILED", attempts: int = 1) -> dict[str, Any]:
    """A child's end after `attempts` attempts, each a minute."""
    view = child_view(index)
    code = 0 if status == "SUCCEEDED" else 1
    made = [
        attempt(view, number, started=at(number), stopped=at(number) + timedelta(seconds=60), exit_code=code)
        for number in range(1, attempts + 1)
    ]
    return state_change(view, status, at=at(attempts + 2), attempts=made, exit_code=code)


def stream_of(index: int, attempt_number: int = 1) -> tuple[str, str]:
    return "/aws/batch/job", log_stream(child_view(index), attempt_number)


def test_a_failed_childs_log_is_the_attempt_that_ended_it_kept_once_however_often_its_end_comes(array) -> None:
    tracker, table = array
    failed, retried, succeeded = child_end(3), child_end(5, attempts=3), child_end(4, status="SUCCEEDED")
    running = state_change(child_view(3), "RUNNING", at=at(1))
    deliver(tracker, failed, succeeded)
    version = table.children["arr"].version
    deliver(tracker, failed, running, succeeded)  # redelivered, and a late RUNNING: nothing new
    assert table.children["arr"].version == version, "nothing new to write"
    deliver(tracker, retried)
    assert table.children["arr"].failed_logs == {3: stream_of(3), 5: stream_of(5, 3)}, "failed children only"


def test_a_child_that_failed_before_it_started_has_no_log(array) -> None:
    tracker, table = array
    view = child_view(7)
    view.pop("startedAt", None)
    deliver(tracker, state_change(view, "FAILED", at=at(2), reason="Dependent Job failed"))
    assert table.children["arr"].failed_logs == {}
    assert table.children["arr"].counts == {"FAILED": 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_lowest_indices_are_kept_whatever_order_the_children_end_in(array, seed: int) -> None:
    tracker, table = array
    ends = [child_end(index) for index in range(SIZE)]
    random.Random(seed).shuffle(ends)
    for start in range(0, SIZE, 7):  # batches as they come, each redelivered once
        deliver(tracker, *ends[start : start + 7])
        deliver(tracker, *ends[: start + 7])
    kept = table.children["arr"].failed_logs
    assert sorted(kept) == list(range(FAILED_CHILD_LOGS))
    assert all(kept[index] == stream_of(index) for index in kept)
