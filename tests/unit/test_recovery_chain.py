"""A step's recovery chain on one line (store/chains), what a run's end says of it (track/runs: the step's
story, its status when an array's recovery left children behind, the run's usage without its reused steps),
and an array whose children failed in different ways (docs/recovery.md, *Edge cases*)."""

from __future__ import annotations

from typing import Any

from batchdrop.events.contract import Usage
from batchdrop.platform.recovery import RecoveryCounts, RecoveryDue, RecoveryPolicy, decide_children
from batchdrop.spec.model import Resources
from batchdrop.store.chains import chain_line, left_behind
from batchdrop.store.records import JobRecord, SubmittedJobRef
from batchdrop.track.runs import run_usage, step_summary
from tests.recordkit import SOURCE, T0, run_record

GIB = 1024
POLICY = RecoveryPolicy(
    out_of_memory_times=2,
    max_memory_mib=240 * GIB,
    attempts=2,
    spot_fallback_after=2,
    fallback_queue="gpu-on-demand",
    fallback_queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/gpu-on-demand",
    fallback_max_memory_mib=240 * GIB,
)
SPOT_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-spot"


def job(job_id: str, *, memory: int, status: str, recovers: str | None = None, **update: Any) -> JobRecord:
    step = update.pop("step", "train")
    fields: dict[str, Any] = {
        "job_id": job_id,
        "run_id": "r1",
        "team": "vision",
        "environment": "adhoc",
        "spec_name": "p",
        "step": step,
        "job_name": f"p-{step}-{job_id}",
        "queue": "cpu-shared",
        "queue_arn": "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-shared",
        "hardware": "cpu",
        "job_definition": "trainer",
        "job_definition_arn": "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
        "resources": Resources(vcpus=2, memory_mib=memory),
        "submitted_at": T0,
        "last_event_at": T0,
        "spec_digest": "0" * 64,
        "source": SOURCE,
        "status": status,
        "recovers": recovers,
    }
    return JobRecord.model_validate(fields | update)


def oom_due(number: int, memory: int, **update: Any) -> RecoveryDue:
    return RecoveryDue(
        number=number,
        kind="out_of_memory",
        memory_mib=memory,
        queue="cpu-shared",
        queue_arn="arn",
        attempts=1,
        counts=RecoveryCounts(out_of_memory=number),
        words="…",
        **update,
    )


def by_id(*jobs: JobRecord) -> dict[str, JobRecord]:
    return {each.job_id: each for each in jobs}


def test_a_job_recovered_once_tells_its_chain_on_one_line() -> None:
    first = job("j1", memory=16 * GIB, status="FAILED", attempts=1, recovery=oom_due(1, 32 * GIB), recovered_by="j2")
    last = job("j2", memory=32 * GIB, status="SUCCEEDED", attempts=1, recovers="j1")

    assert chain_line(last, by_id(first)) == "attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → succeeded"


def test_a_sweeps_chain_counts_its_children() -> None:
    due = oom_due(1, 32 * GIB, children=",".join(str(index) for index in range(5, 1000, 25)))
    first = job("s1", memory=16 * GIB, status="FAILED", array_size=1000, recovery=due, recovered_by="s2")
    last = job(
        "s2", memory=32 * GIB, status="SUCCEEDED", array_size=40, recovers="s1", status_summary={"SUCCEEDED": 40}
    )

    assert chain_line(last, by_id(first)) == (
        "40 of 1,000 children ran out of memory with 16 GiB → recovery 1: 40 children with 32 GiB "
        "→ 40 children succeeded"
    )


def test_two_recoveries_and_a_final_failure_in_numbers_are_one_line() -> None:
    first = job("j1", memory=16 * GIB, status="FAILED", recovery=oom_due(1, 32 * GIB), recovered_by="j2")
    second = job(
        "j2", memory=32 * GIB, status="FAILED", recovers="j1", recovery=oom_due(2, 64 * GIB), recovered_by="j3"
    )
    final = "ran out of memory with 64 GiB after 2 of 2 recoveries"
    last = job(
        "j3", memory=64 * GIB, status="FAILED", recovers="j2", failure="out of memory", recovery_final=final, attempts=1
    )

    assert chain_line(last, by_id(first, second)) == (
        "attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → attempt 1: out of memory at 32 GiB "
        f"→ recovery 2 with 64 GiB → failed: out of memory — {final}"
    )


def test_a_spot_fallback_and_a_recovery_being_submitted_are_told() -> None:
    due = RecoveryDue(
        number=1,
        kind="spot_fallback",
        memory_mib=8192,
        queue="gpu-on-demand",
        queue_arn="arn",
        attempts=1,
        counts=RecoveryCounts(spot_fallback=1, spot_reclaims=2),
        words="…",
    )
    waiting = job("g1", memory=8192, status="FAILED", queue="gpu-spot", recovery=due)

    assert chain_line(waiting, {}) == (
        "reclaimed 2 times on spot queue `gpu-spot` → recovery 1 on on-demand queue `gpu-on-demand` (being submitted)"
    )


def test_a_step_never_recovered_has_no_chain_and_a_later_step_submitted_again_has_none_of_its_own() -> None:
    assert chain_line(job("p", memory=4096, status="SUCCEEDED"), {}) is None
    before = job("e1", memory=4096, status="FAILED", step="evaluate", failure_class="dependency", recovered_by="e2")
    again = job("e2", memory=4096, status="SUCCEEDED", step="evaluate", recovers="e1")
    assert chain_line(again, by_id(before)) is None


def children(failed: dict[int, tuple[str, int]]) -> Any:
    return decide_children(
        POLICY, failed=failed, size=1_000, memory_mib=16 * GIB, queue="gpu-spot", queue_arn=SPOT_ARN,
        counts=RecoveryCounts(),
    )  # fmt: skip


def test_an_arrays_reclaimed_children_run_again_with_its_out_of_memory_ones() -> None:
    failed = dict.fromkeys((3, 7, 10), ("out_of_memory", 1)) | dict.fromkeys((4, 20), ("spot_reclaim", 2))

    due = children(failed).due

    assert due is not None
    assert (due.children, due.reclaimed, due.left, due.kind, due.memory_mib) == (
        "3-4,7,10,20",
        2,
        None,
        "out_of_memory",
        32 * GIB,
    )
    assert due.words == (
        "3 of 1,000 children ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2); "
        "the 2 children reclaimed on spot run again with them"
    )
    first = job("a1", memory=16 * GIB, status="FAILED", array_size=1000, recovery=due, recovered_by="a2")
    last = job("a2", memory=32 * GIB, status="SUCCEEDED", array_size=5, recovers="a1", status_summary={"SUCCEEDED": 5})
    assert chain_line(last, by_id(first)) == (
        "3 of 1,000 children ran out of memory with 16 GiB, 2 reclaimed on spot → recovery 1: 5 children with 32 GiB "
        "→ 5 children succeeded"
    )


def test_reclaimed_children_alone_fall_back_as_a_reclaimed_job_does() -> None:
    due = children({4: ("spot_reclaim", 2), 9: ("spot_reclaim", 2)}).due
    assert due is not None
    assert (due.children, due.kind, due.reclaimed) == ("4,9", "spot_fallback", 0)


def test_an_oom_past_the_limit_says_the_reclaimed_children_are_not_run_again_either() -> None:
    final = decide_children(
        POLICY,
        failed={1: ("out_of_memory", 1), 2: ("spot_reclaim", 1)},
        size=10,
        memory_mib=240 * GIB,
        queue="gpu-spot",
        queue_arn=SPOT_ARN,
        counts=RecoveryCounts(),
    ).final
    assert final is not None
    assert final.endswith("not resubmitted; nor the 1 child reclaimed on spot")


def test_children_that_failed_otherwise_are_named_and_fail_the_step_though_its_recovery_succeeds() -> None:
    due = children(dict.fromkeys((3, 7), ("out_of_memory", 1)) | {8: ("other", 1)}).due
    assert due is not None
    assert (due.children, due.left) == ("3,7", "8")
    first = job("a1", memory=16 * GIB, status="FAILED", array_size=1000, recovery=due, recovered_by="a2")
    last = job("a2", memory=32 * GIB, status="SUCCEEDED", array_size=2, recovers="a1", status_summary={"SUCCEEDED": 2})
    replaced = by_id(first)

    assert left_behind(last, replaced) == (
        "1 child failed otherwise (not out of memory, not reclaimed) and was not run again"
    )
    summary = step_summary(SubmittedJobRef.of(last), last, replaced)
    assert summary.status == "failed", "not every child of the step succeeded"
    assert summary.failure == left_behind(last, replaced)
    assert summary.story is not None
    assert summary.story.startswith("2 of 1,000 children ran out of memory with 16 GiB (1 failed otherwise)")


def test_a_recovered_steps_summary_keeps_its_story_and_a_reused_step_names_its_run() -> None:
    first = job("j1", memory=16 * GIB, status="FAILED", recovery=oom_due(1, 32 * GIB), recovered_by="j2")
    last = job("j2", memory=32 * GIB, status="SUCCEEDED", attempts=1, recovers="j1")
    summary = step_summary(SubmittedJobRef.of(last), last, by_id(first))
    assert summary.story == "attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → succeeded"
    assert [recovery.job_id for recovery in summary.recoveries or []] == ["j1"]

    prep = job("old-prep", memory=4096, status="SUCCEEDED", step="prep")
    reused = SubmittedJobRef.of(prep).model_copy(update={"reused_from": "run-before"})
    assert step_summary(reused, prep).reused_from == "run-before"


def used(job_id: str, hours: float, **update: Any) -> JobRecord:
    return job(job_id, memory=4096, status="SUCCEEDED", usage=Usage(vcpu_hours=hours), **update)


def test_a_resumed_runs_usage_leaves_out_its_reused_steps_and_counts_its_own_recoveries() -> None:
    prep = used("old-prep", 5.0, step="prep")  # ran for the earlier run
    old_train = used("old-train-failed", 7.0, step="train")  # that run's failed train: its own too
    prep = prep.model_copy(update={"recovers": "old-train-failed"})  # even a chain behind it is not counted
    failed_train = used("train-1", 2.0)
    train = used("train-2", 3.0, recovers="train-1")
    reused_prep = SubmittedJobRef.of(prep).model_copy(update={"reused_from": "run-before"})
    run = run_record([reused_prep, SubmittedJobRef.of(train)], run_id="r2", status="running", resumes="run-before")

    usage = run_usage(run, by_id(prep, train), by_id(failed_train, old_train))

    assert usage.vcpu_hours == 5.0, "train's two jobs (2 + 3 vCPU-hours); prep ran for run-before"
