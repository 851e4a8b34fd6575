"""Tracker against an in-memory table (`fakes.MemoryTable`): Batch's events in any order, no AWS."""

from __future__ import annotations

from typing import Any

import pytest
from batchdrop_local.state_changes import attempt, sample_job, state_change

from batchdrop.platform.config import PlatformConfig, QueuePrice
from batchdrop.platform.costs import cost_of
from batchdrop.store.records import JobRecord
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery
from batchdrop.track.tracker import Tracker
from tests.recordkit import at, job_record, run_of_jobs
from tests.unit.fakes import FixedConfig, MemoryTable


@pytest.fixture
def world(platform_config: PlatformConfig) -> tuple[Tracker, MemoryTable]:
    table = MemoryTable()
    jobs = [
        job_record("a", "prep"),
        job_record("b", "train", depends_on=["a"]),
        job_record("c", "evaluate", depends_on=["b"]),
    ]
    table.write_new([run_of_jobs(jobs)], jobs)
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60))
    return tracker, table


def batch_view(job: JobRecord) -> dict[str, Any]:
    view = sample_job(job.job_id, name=job.job_name, gpus=0)
    view["tags"]["batchdrop:run-id"] = job.run_id
    return view


def deliver(tracker: Tracker, *events: dict[str, Any]) -> Any:
    return tracker.track(Delivery(f"msg-{index}", BatchEvent.model_validate(e)) for index, e in enumerate(events))


def lifecycle(job: JobRecord, *, fail: bool = False) -> list[dict[str, Any]]:
    view = batch_view(job)
    last = attempt(view, 1, started=at(3), stopped=at(9), exit_code=1 if fail else 0)
    return [
        state_change(view, "RUNNABLE", at=at(1)),
        state_change(view, "RUNNING", at=at(3)),
        state_change(view, "FAILED" if fail else "SUCCEEDED", at=at(9), attempts=[last], exit_code=1 if fail else 0),
    ]


def test_events_in_any_order_end_in_the_newest_state_and_carry_what_they_passed_through(world) -> None:
    tracker, table = world
    runnable, running, succeeded = lifecycle(table.jobs["a"])
    deliver(tracker, succeeded, runnable)
    deliver(tracker, running)  # late: older than what is stored
    job = table.jobs["a"]
    assert job.status == "SUCCEEDED"
    assert [t.status for t in job.passed] == ["RUNNABLE", "SUCCEEDED"], "the outbox entry of the write that ended it"
    assert set(table.histories["a"]) == {"0:SUBMITTED", "0:RUNNABLE", "0:RUNNING", "1:SUCCEEDED"}
    assert job.usage is not None
    assert job.usage.vcpu_hours == pytest.approx(8 * 6 / 60), "the event's 8 vCPUs for its 6 minutes running"


def test_a_run_is_running_when_a_job_starts_and_succeeds_when_all_have(world) -> None:
    tracker, table = world
    deliver(tracker, lifecycle(table.jobs["a"])[1])
    assert table.runs["r1"].status == "running"
    for job_id in ("a", "b", "c"):
        deliver(tracker, *lifecycle(table.jobs[job_id]))
    assert table.runs["r1"].status == "succeeded"


def test_a_failed_step_fails_every_step_waiting_for_it_and_its_run(world) -> None:
    tracker, table = world
    result = deliver(tracker, *lifecycle(table.jobs["a"], fail=True))
    assert {job_id: table.jobs[job_id].status for job_id in "abc"} == {"a": "FAILED", "b": "FAILED", "c": "FAILED"}
    assert table.jobs["c"].failure == "upstream step `prep` failed"
    assert table.runs["r1"].status == "failed"
    assert result.counts["JobsFailedUpstream"] == 2


def test_a_stored_state_equal_to_ours_is_our_own_lost_answer_and_still_settles_the_run(world) -> None:
    tracker, table = world
    running = lifecycle(table.jobs["a"])[1]
    event = BatchEvent.model_validate(running)
    # botocore's first copy of the update was applied, its answer lost; the re-sent copy finds it stored
    table.apply_job_state(tracker.changes.change(event.detail, event.time, passed=[]))
    assert table.runs["r1"].status == "submitted"
    deliver(tracker, running)
    assert table.runs["r1"].status == "running"


def test_events_of_jobs_not_ours_are_counted_and_ours_not_yet_recorded_come_back(world) -> None:
    tracker, _ = world
    foreign = sample_job("zzz", gpus=0)
    foreign["tags"] = {}
    ours = sample_job("yyy", gpus=0)
    ours["tags"]["batchdrop:run-id"] = "r9"
    result = deliver(tracker, state_change(foreign, "RUNNING", at=at(1)), state_change(ours, "RUNNING", at=at(1)))
    assert result.counts["ForeignEvents"] == 1
    assert result.unrecorded == {"msg-1"}


def test_array_children_add_up_on_their_parent(world) -> None:
    tracker, table = world
    parent = job_record("arr", "sweep", array_size=4)
    table.write_new([], [parent])
    view = batch_view(parent)
    children = [
        state_change({**view, "jobId": f"arr:{index}", "arrayProperties": {"index": index}}, status, at=at(minute))
        for index in range(4)
        for minute, status in ((1, "RUNNABLE"), (2, "RUNNING"))
    ]
    deliver(tracker, *children[:5])
    deliver(tracker, *children)  # duplicates and the rest
    assert table.jobs["arr"].children == {"RUNNABLE": 0, "RUNNING": 4}
    assert table.children["arr"].version == 2


def test_a_run_that_ends_keeps_how_each_step_went_written_with_its_end(world) -> None:
    tracker, table = world
    for job_id in ("a", "b", "c"):
        deliver(tracker, *lifecycle(table.jobs[job_id]))
    run = table.runs["r1"]
    assert run.status == "succeeded"
    assert [(step.step, step.status, step.attempts) for step in run.steps] == [
        ("prep", "succeeded", 1),
        ("train", "succeeded", 1),
        ("evaluate", "succeeded", 1),
    ]
    prep = run.steps[0]
    assert prep.duration_seconds == pytest.approx(360.0), "6 minutes running"
    assert prep.ended_at == at(9)
    assert prep.usage is not None
    assert prep.failure is None


def test_a_failed_runs_steps_say_which_failed_and_why(world) -> None:
    tracker, table = world
    deliver(tracker, *lifecycle(table.jobs["a"], fail=True))
    steps = {step.step: step for step in table.runs["r1"].steps}
    assert (steps["prep"].status, steps["prep"].failure_class, steps["prep"].exit_code) == (
        "failed",
        "non_zero_exit",
        1,
    )
    assert (steps["evaluate"].status, steps["evaluate"].failure_class) == ("failed", "dependency")
    assert steps["evaluate"].failure == "upstream step `prep` failed"
    assert table.runs["r1"].reason is not None


def test_a_job_its_runs_cancel_asked_for_that_batch_fails_for_its_stopped_dependency_is_cancelled(world) -> None:
    tracker, table = world
    table.jobs["b"] = table.jobs["b"].model_copy(update={"cancelled_by": "arn:aws:iam::123456789012:user/ana"})
    view = batch_view(table.jobs["b"])
    deliver(tracker, state_change(view, "FAILED", at=at(4), reason="Dependent Job failed"))
    job = table.jobs["b"]
    assert (job.failure_class, job.failure) == (
        "cancelled",
        "cancelled with its run by arn:aws:iam::123456789012:user/ana",
    )


def test_a_run_that_ends_keeps_what_it_cost_where_its_queues_have_prices(world) -> None:
    tracker, table = world
    price = QueuePrice(vcpu_hour=0.05, gib_hour=0.005, gpu_hour=2.0)
    for job_id in ("a", "b"):
        table.jobs[job_id] = table.jobs[job_id].model_copy(update={"price": price})
    for job_id in ("a", "b", "c"):
        deliver(tracker, *lifecycle(table.jobs[job_id]))
    run = table.runs["r1"]
    expected = sum(cost_of(table.jobs[job_id]) or 0.0 for job_id in ("a", "b"))
    assert expected > 0
    assert run.cost_usd == pytest.approx(expected, abs=1e-4), "the priced jobs' cost; `c`'s queue has no prices"


def test_a_run_on_queues_without_prices_has_no_cost(world) -> None:
    tracker, table = world
    for job_id in ("a", "b", "c"):
        deliver(tracker, *lifecycle(table.jobs[job_id]))
    assert table.runs["r1"].status == "succeeded"
    assert table.runs["r1"].cost_usd is None
