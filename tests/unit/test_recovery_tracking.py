"""Tracking decides a recovery: written with the FAILED status in one update, and the run waits for it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from batchdrop_local.state_changes import attempt, state_change

from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.recovery import RecoveryCounts, RecoveryPolicy
from batchdrop.store.items import Applied, JobChange
from batchdrop.store.records import JobRecord, SubmittedJobRef
from batchdrop.track.reconcile import Reconciler
from batchdrop.track.tracker import Tracker
from tests.recordkit import at, job_record, run_of_jobs
from tests.unit.fakes import FixedConfig, MemoryTable
from tests.unit.test_tracker import batch_view, deliver, lifecycle

OOM = RecoveryPolicy(out_of_memory_times=2, grow=2.0, max_memory_mib=65536, attempts=1)
SPOT = RecoveryPolicy(
    max_memory_mib=65536,
    attempts=3,
    spot_fallback_after=2,
    fallback_queue="cpu-on-demand",
    fallback_queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/cpu-on-demand",
)
RECLAIMED = "Host EC2 (instance i-0abc) terminated."


class CountingTable(MemoryTable):
    """The in-memory table, keeping every state change applied to it."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[JobChange] = []

    def apply_job_state(self, change: JobChange) -> Applied:
        applied = super().apply_job_state(change)
        if applied.changed:
            self.applied.append(change)
        return applied


@pytest.fixture
def world(platform_config: PlatformConfig) -> tuple[Tracker, CountingTable]:
    """The pipeline prep (a) → train (b) → evaluate (c), train allowed to grow its 16 GiB twice."""
    table = CountingTable()
    train = job_record("b", "train", depends_on=["a"])
    train = train.model_copy(
        update={"recovery_policy": OOM, "resources": train.resources.model_copy(update={"memory_mib": 16384})}
    )
    jobs = [job_record("a", "prep"), train, job_record("c", "evaluate", depends_on=["b"])]
    table.write_new([run_of_jobs(jobs)], jobs)
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60))
    return tracker, table


def failed(job: JobRecord, *ends: dict[str, Any], exit_code: int | None = None, reason: str | None = None) -> Any:
    return state_change(batch_view(job), "FAILED", at=at(9), attempts=list(ends), exit_code=exit_code, reason=reason)


def out_of_memory(job: JobRecord, number: int = 1) -> dict[str, Any]:
    return attempt(
        batch_view(job),
        number,
        started=at(3),
        stopped=at(9),
        exit_code=137,
        reason="OutOfMemoryError: Container killed due to memory usage",
    )


def reclaimed(job: JobRecord, number: int) -> dict[str, Any]:
    return attempt(batch_view(job), number, started=at(number), stopped=at(number + 1), exit_code=None,
                   status_reason=RECLAIMED)  # fmt: skip


def test_an_oom_its_spec_recovers_is_decided_with_the_failed_status_in_one_update(world) -> None:
    tracker, table = world
    deliver(tracker, *lifecycle(table.jobs["a"]))
    event = failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137)
    deliver(tracker, event)
    job = table.jobs["b"]
    assert (job.status, job.failure_class) == ("FAILED", "out_of_memory")
    assert job.recovery is not None
    assert (job.recovery.number, job.recovery.kind, job.recovery.memory_mib) == (1, "out_of_memory", 32768)
    assert job.recovery.words == "ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"
    assert job.recovery.counts == RecoveryCounts(out_of_memory=1)
    ending = [change for change in table.applied if change.job_id == "b"]
    assert [change.status for change in ending] == ["FAILED"], "one update"
    assert "recovery" in ending[0].fields, "the decision rides on the update that records FAILED"
    deliver(tracker, event)  # the same event again: the job has ended, nothing is decided twice
    assert [change.job_id for change in table.applied].count("b") == 1
    assert table.jobs["b"].recovery == job.recovery


def test_growth_past_the_largest_instance_is_final_and_says_so_in_numbers(world) -> None:
    tracker, table = world
    table.jobs["b"] = table.jobs["b"].model_copy(
        update={"resources": table.jobs["b"].resources.model_copy(update={"memory_mib": 65536})}
    )
    deliver(tracker, *lifecycle(table.jobs["a"]))
    deliver(tracker, failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137))
    job = table.jobs["b"]
    assert job.recovery is None
    assert job.recovery_final == (
        "ran out of memory with 64 GiB, all the largest instance of queue `cpu-shared` has: not resubmitted"
    )
    run = table.runs["r1"]
    assert run.status == "failed", "a final failure ends its run"
    assert "not resubmitted" in (run.reason or "")
    train = next(step for step in run.steps if step.step == "train")
    assert (train.failure or "").endswith("64 GiB, all the largest instance of queue `cpu-shared` has: not resubmitted")


def test_recoveries_used_up_are_final_in_numbers(world) -> None:
    tracker, table = world
    table.jobs["b"] = table.jobs["b"].model_copy(update={"recovery_counts": RecoveryCounts(out_of_memory=2)})
    deliver(tracker, failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137))
    assert table.jobs["b"].recovery_final == "ran out of memory with 16 GiB after 2 of 2 recoveries"


def test_a_bug_is_never_recovered(world) -> None:
    tracker, table = world
    deliver(tracker, *lifecycle(table.jobs["b"], fail=True))  # exit 1
    job = table.jobs["b"]
    assert (job.status, job.failure_class, job.recovery, job.recovery_final) == ("FAILED", "non_zero_exit", None, None)
    assert table.jobs["c"].status == "FAILED", "its downstream fails as before"


def test_spot_reclaims_count_the_jobs_own_attempts_and_its_chains(world) -> None:
    tracker, table = world
    alone, chained, twice = (
        job_record(job_id, job_id).model_copy(update={"recovery_policy": SPOT}) for job_id in "xyz"
    )
    chained = chained.model_copy(update={"recovery_counts": RecoveryCounts(spot_reclaims=1)})
    table.write_new([], [alone, chained, twice])
    deliver(tracker, failed(alone, reclaimed(alone, 1), reason=RECLAIMED))
    assert table.jobs["x"].recovery is None, "one reclaim of two"
    assert table.jobs["x"].recovery_final is None

    deliver(tracker, failed(chained, reclaimed(chained, 1), reason=RECLAIMED))
    due = table.jobs["y"].recovery
    assert due is not None, "its chain's earlier reclaim and its own make two"
    assert (due.kind, due.queue, due.attempts) == ("spot_fallback", "cpu-on-demand", 1)
    assert due.counts.spot_reclaims == 2
    assert due.words == "reclaimed 2 times on spot queue `cpu-shared`; resubmitted on on-demand queue `cpu-on-demand`"

    deliver(tracker, failed(twice, reclaimed(twice, 1), reclaimed(twice, 2), reason=RECLAIMED))
    assert table.jobs["z"].recovery is not None, "two reclaims of its own attempts"


def _sweep(table: CountingTable, size: int, **update: Any) -> JobRecord:
    parent = job_record("arr", "sweep", array_size=size)
    parent = parent.model_copy(
        update={"recovery_policy": OOM, "resources": parent.resources.model_copy(update={"memory_mib": 16384})} | update
    )
    table.write_new([], [parent])
    return parent


def _child_end(parent: JobRecord, index: int, status: str) -> Any:
    view = {**batch_view(parent), "jobId": f"arr:{index}", "arrayProperties": {"index": index}}
    if status == "OOM":
        ended = attempt(view, 1, started=at(3), stopped=at(8), exit_code=137,
                        reason="OutOfMemoryError: Container killed due to memory usage")  # fmt: skip
        return state_change(view, "FAILED", at=at(8), attempts=[ended], exit_code=137)
    if status == "BUG":
        return state_change(view, "FAILED", at=at(8), exit_code=1)
    return state_change(view, status, at=at(8))


def _parent_failed(parent: JobRecord) -> Any:
    view = {**batch_view(parent), "arrayProperties": {"size": parent.array_size}}
    return state_change(view, "FAILED", at=at(9), reason="Array Child Job failed")


def test_an_array_recovers_only_its_children_that_ran_out_of_memory(world) -> None:
    tracker, table = world
    parent = _sweep(table, 12)
    fates = {3: "OOM", 7: "OOM", 8: "BUG", 10: "OOM", 11: "OOM"}
    deliver(tracker, *(_child_end(parent, index, fates.get(index, "SUCCEEDED")) for index in range(12)))
    deliver(tracker, _parent_failed(parent))
    due = table.jobs["arr"].recovery
    assert due is not None
    assert due.children == "3,7,10-11", "the OOM children by original index; the bug's failure is final"
    assert due.memory_mib == 32768
    assert due.words == "4 of 12 children ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"


def test_a_recovered_arrays_children_are_named_by_their_original_index(world) -> None:
    tracker, table = world
    parent = _sweep(table, 3, child_indices="3,7,10", recovery_counts=RecoveryCounts(out_of_memory=1))
    deliver(tracker, *(_child_end(parent, index, "OOM" if index else "SUCCEEDED") for index in range(3)))
    deliver(tracker, _parent_failed(parent))
    due = table.jobs["arr"].recovery
    assert due is not None
    assert (due.children, due.number, due.memory_mib) == ("7,10", 2, 32768)


def test_a_single_job_recovering_one_child_keeps_its_index(world) -> None:
    tracker, table = world
    one = job_record("one", "sweep").model_copy(update={"recovery_policy": OOM, "child_indices": "7"})
    table.write_new([], [one])
    deliver(tracker, failed(one, out_of_memory(one), exit_code=137))
    due = table.jobs["one"].recovery
    assert due is not None
    assert due.children == "7"


def test_an_arrays_end_waits_for_its_childrens_ends(world) -> None:
    tracker, table = world
    parent = _sweep(table, 4)
    deliver(tracker, *(_child_end(parent, index, "OOM" if index == 2 else "SUCCEEDED") for index in range(3)))
    result = deliver(tracker, _parent_failed(parent))
    assert result.failed, "the parent's end goes back to the queue until child 3's end is merged"
    assert result.unrecorded == result.failed, "and comes back soon (an early retry), not after the timeout"
    assert result.counts["ChildrenNotAllTold"] == 1
    assert table.jobs["arr"].status != "FAILED"
    result = deliver(tracker, _child_end(parent, 3, "SUCCEEDED"), _parent_failed(parent))
    assert result.failed, "merged after the parent in the same batch: tried once more"
    deliver(tracker, _parent_failed(parent))
    due = table.jobs["arr"].recovery
    assert due is not None
    assert due.children == "2"


def test_an_array_without_a_recovery_policy_ends_at_once(world) -> None:
    tracker, table = world
    parent = _sweep(table, 4, recovery_policy=None)
    deliver(tracker, _parent_failed(parent))
    assert (table.jobs["arr"].status, table.jobs["arr"].recovery) == ("FAILED", None)


def test_the_run_waits_for_a_recovery_and_tells_it_when_it_ends(world) -> None:
    tracker, table = world
    deliver(tracker, *lifecycle(table.jobs["a"]))
    deliver(tracker, failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137))
    assert table.jobs["c"].status == "SUBMITTED", "batchdrop does not fail the step after a recovering one"
    assert table.runs["r1"].status == "running"
    deliver(tracker, state_change(batch_view(table.jobs["c"]), "FAILED", at=at(10), reason="Dependent Job failed"))
    assert table.jobs["c"].status == "FAILED", "Batch fails it"
    assert table.runs["r1"].status == "running", "the run waits for the recovery"

    # The submit function's side: the new jobs, the replaced ones marked, the run's refs rewired.
    due = table.jobs["b"].recovery
    assert due is not None
    train = job_record("b2", "train", depends_on=["a"]).model_copy(
        update={"recovers": "b", "recovery_counts": due.counts, "recovery_policy": OOM}
    )
    evaluate = job_record("c2", "evaluate", depends_on=["b2"]).model_copy(update={"recovers": "c"})
    table.write_new([], [train, evaluate])
    table.jobs["b"] = table.jobs["b"].model_copy(update={"recovered_by": "b2"})
    table.jobs["c"] = table.jobs["c"].model_copy(update={"recovered_by": "c2"})
    run = table.runs["r1"]
    refs = [
        ref if ref.step == "prep" else SubmittedJobRef.of(table.jobs[ref.job_id + "2"], ref.depends_on)
        for ref in run.jobs
    ]
    table.runs["r1"] = run.model_copy(update={"jobs": refs})

    deliver(tracker, failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137))  # late, superseded
    assert table.runs["r1"].status == "running"
    deliver(tracker, *lifecycle(table.jobs["b2"]))
    assert table.runs["r1"].status == "running"
    deliver(tracker, *lifecycle(table.jobs["c2"]))
    run = table.runs["r1"]
    assert run.status == "succeeded"
    steps = {step.step: step for step in run.steps}
    assert steps["train"].job_id == "b2"
    assert steps["train"].recoveries is not None
    assert [(r.number, r.kind, r.job_id, r.memory_mib) for r in steps["train"].recoveries] == [
        (1, "out_of_memory", "b", 32768)
    ]
    assert steps["train"].recoveries[0].words == "ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"
    assert steps["evaluate"].recoveries is None, "submitted again after train's recovery: not a recovery of its own"
    assert run.usage is not None
    assert run.usage.vcpu_hours > sum(step.usage.vcpu_hours for step in run.steps if step.usage), (
        "the replaced job's run counts in what the run used"
    )


def test_a_cancelled_run_does_not_wait_for_a_recovery(world) -> None:
    tracker, table = world
    table.runs["r1"] = table.runs["r1"].model_copy(update={"cancel_requested_at": at(5)})
    deliver(tracker, *lifecycle(table.jobs["a"]))
    deliver(tracker, failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137))
    assert table.jobs["c"].status == "FAILED"
    assert table.runs["r1"].status == "failed"


class NoBatch:
    """Batch as the watchdog sees it here: it knows of no job still running."""

    def describe(self, job_ids: Any) -> dict[str, Any]:
        return {}


def test_a_recovery_found_impossible_is_settled_by_the_watchdog(world) -> None:
    """No Batch event follows a recovery the submit function could not make: the failed job stays on the
    watchdog's index until its run has ended, and then leaves it."""
    tracker, table = world
    deliver(tracker, *lifecycle(table.jobs["a"]))
    deliver(tracker, failed(table.jobs["b"], out_of_memory(table.jobs["b"]), exit_code=137))
    deliver(tracker, failed(table.jobs["c"], reason="Dependent Job failed"))
    reconciler = Reconciler(
        tracker=tracker, batch=cast(Any, NoBatch()), quiet_after=timedelta(0), clock=lambda: at(600)
    )
    assert reconciler.reconcile()["RecoveriesWaiting"] == 1, "waiting for the submit function: watched, not settled"
    assert table.runs["r1"].status != "failed"
    # the submit function gives up (the spec is gone): the failure is final, and no Batch event will come
    table.jobs["b"] = table.jobs["b"].model_copy(update={"recovery": None, "recovery_final": "the spec is gone"})
    counts = reconciler.reconcile()
    assert counts["RecoveriesSettled"] == 1
    assert table.runs["r1"].status == "failed", "the watchdog ended the run"
    assert reconciler.reconcile()["RecoveriesSettled"] == 0, "off the index once its run has ended"


def test_a_cancelled_array_ends_at_once_without_waiting_for_its_children(world) -> None:
    tracker, table = world
    parent = _sweep(table, 4)
    view = {**batch_view(parent), "arrayProperties": {"size": 4}}
    deliver(tracker, state_change(view, "FAILED", at=at(9), reason="Terminated by user: batchdrop cancel"))
    assert (table.jobs["arr"].status, table.jobs["arr"].recovery) == ("FAILED", None)
