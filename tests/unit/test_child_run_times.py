"""An array's children's run times, kept as a histogram of log-spaced buckets in their one item: each child
counted once, at its end, however often its events come, in whatever order; the median and 90th
percentile read back within a bucket."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from batchdrop_local.state_changes import attempt, state_change

from batchdrop.platform.config import PlatformConfig
from batchdrop.store.child_states import (
    RUN_TIME_BUCKETS,
    bucket_bounds,
    bucket_middle,
    run_time_bucket,
    run_time_quantile,
)
from batchdrop.track.batch_events import BatchEvent, attempt_run_seconds, run_seconds
from batchdrop.track.tracker import Tracker
from tests.recordkit import at, job_record
from tests.unit.fakes import FixedConfig, MemoryTable
from tests.unit.test_tracker import batch_view, deliver


@pytest.fixture
def array(platform_config: PlatformConfig) -> tuple[Tracker, MemoryTable]:
    table = MemoryTable()
    table.write_new([], [job_record("arr", "sweep", array_size=6)])
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60))
    return tracker, table


def child_end(index: int, seconds: float, *, status: str = "SUCCEEDED", earlier: float | None = None) -> dict[str, Any]:
    """A child's end after running `seconds` (its last attempt), with an `earlier` attempt first if given."""
    view = {**batch_view(job_record("arr", "sweep", array_size=6)), "jobId": f"arr:{index}"}
    view["arrayProperties"] = {"index": index}
    attempts = []
    start = at(1)
    if earlier is not None:
        attempts.append(attempt(view, 1, started=start, stopped=start + timedelta(seconds=earlier), exit_code=1))
        start += timedelta(seconds=earlier + 30)
    stop = start + timedelta(seconds=seconds)
    attempts.append(
        attempt(view, len(attempts) + 1, started=start, stopped=stop, exit_code=0 if status == "SUCCEEDED" else 1)
    )
    return state_change(view, status, at=stop, attempts=attempts, exit_code=0 if status == "SUCCEEDED" else 1)


def test_each_childs_last_attempt_is_counted_once_however_often_its_end_comes(array) -> None:
    tracker, table = array
    ends = [child_end(0, 50), child_end(1, 60), child_end(2, 600, status="FAILED"), child_end(3, 3, earlier=900)]
    deliver(tracker, *ends[:2])
    deliver(tracker, *ends)  # redelivered with the rest
    deliver(tracker, ends[2], ends[0])  # and again, alone
    run_times = table.children["arr"].run_times
    assert sum(run_times.values()) == 4, "four children ended, four counted"
    assert run_times[run_time_bucket(60)] == 2, "50 s and 60 s share a bucket"
    assert run_times[run_time_bucket(600)] == 1, "a failed child's run time counts too"
    assert run_times[run_time_bucket(3)] == 1, "its last attempt's 3 s, not the earlier attempt's 900 s"


def test_a_childs_events_in_any_order_count_it_once_at_its_end(array) -> None:
    tracker, table = array
    view = {**batch_view(job_record("arr", "sweep", array_size=6)), "jobId": "arr:4", "arrayProperties": {"index": 4}}
    running = state_change(view, "RUNNING", at=at(1))
    ended = child_end(4, 120)
    deliver(tracker, ended)
    deliver(tracker, running)  # late: older than its end
    deliver(tracker, ended, running)
    assert table.children["arr"].run_times == {run_time_bucket(120): 1}


def test_a_child_that_never_ran_has_no_run_time() -> None:
    view = {**batch_view(job_record("arr", "sweep", array_size=6)), "jobId": "arr:5", "arrayProperties": {"index": 5}}
    view.pop("startedAt", None)
    cancelled = BatchEvent.model_validate(state_change(view, "FAILED", at=at(2), reason="cancelled"))
    assert attempt_run_seconds(cancelled.detail) == [None]
    assert run_seconds(cancelled.detail) == 0


@pytest.mark.parametrize("seconds", [0.2, 1, 1.5, 59, 60, 3_600, 86_400, 14 * 86_400])
def test_a_run_time_falls_within_its_buckets_bounds(seconds: float) -> None:
    low, high = bucket_bounds(run_time_bucket(seconds))
    assert low <= seconds < high
    assert high / max(low, 1) <= 2**0.5 + 1e-9 or low == 0


def test_the_buckets_are_bounded_whatever_the_run_time() -> None:
    assert run_time_bucket(10**9) == RUN_TIME_BUCKETS - 1
    assert bucket_bounds(RUN_TIME_BUCKETS - 1)[1] == float("inf")


def test_median_and_90th_percentile_read_within_a_bucket() -> None:
    run_times = {run_time_bucket(60): 50, run_time_bucket(120): 40, run_time_bucket(900): 10}
    median, p90 = run_time_quantile(run_times, 0.5), run_time_quantile(run_times, 0.9)
    assert median is not None
    assert p90 is not None
    assert bucket_middle(median) == pytest.approx(60, rel=0.2)
    assert bucket_middle(p90) == pytest.approx(120, rel=0.2)
    assert run_time_quantile({}, 0.5) is None
