"""Recoverer against in-memory fakes: what a failed job whose recovery tracking decided becomes, and that a
redelivery or a crash at any point never submits anything twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.recovery import decide, decide_children
from batchdrop.store.items import RecordConflict
from batchdrop.store.records import JobRecord, SpecSource
from batchdrop.submit.recovery import Recoverer
from batchdrop.submit.submitter import Drop, Submitter
from tests.recordkit import pipeline_spec
from tests.unit.fakes import FakeBatch, FakeBucket, FixedConfig, MemoryTable

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
KEY = "incoming/vision/oom-pipeline.yaml"
SPEC = pipeline_spec(
    "oom-pipe",
    train={
        "resources": "{vcpus: 8, memory_mib: 16384, gpus: 1}",
        "retries": "{attempts: 2, on_spot_interruption: true, out_of_memory: {times: 2, grow: 2.0}, "
        "spot_fallback: {after: 2}}",
    },
)


class World:
    def __init__(self, config: PlatformConfig) -> None:
        self.table, self.batch, self.bucket = MemoryTable(), FakeBatch(), FakeBucket({KEY: SPEC})
        parts = {"table": self.table, "batch": self.batch, "bucket": self.bucket, "config": FixedConfig(config)}
        submitter = Submitter(**parts, clock=lambda: T0)  # type: ignore[arg-type]
        outcome = submitter.submit(Drop(source=SpecSource(bucket="jobs", key=KEY, version_id="v1"), message_id="m1"))
        submitter.flush()
        assert outcome.run_id is not None
        self.run_id = outcome.run_id
        self.table.set_run_status(self.run_id, "vision", "running", expected={"submitted"})
        self.recoverer = Recoverer(**parts, clock=lambda: T0)  # type: ignore[arg-type]

    def job(self, step: str) -> JobRecord:
        ref = next(ref for ref in self.table.runs[self.run_id].jobs if ref.step == step)
        return self.table.jobs[ref.job_id]

    def fail(self, step: str, failure_class: str, reclaims: int = 0) -> JobRecord:
        """What tracking writes: the job FAILED, with the recovery it decided (the stream's new image)."""
        job = self.job(step)
        decision = decide(
            job.recovery_policy,
            failure_class=failure_class,
            memory_mib=job.resources.memory_mib,
            queue=job.queue,
            queue_arn=job.queue_arn,
            counts=job.recovery_counts,
            reclaims=reclaims,
        )
        failed = job.model_copy(update={"status": "FAILED", "failure_class": failure_class, "recovery": decision.due})
        self.table.jobs[job.job_id] = failed
        return failed


@pytest.fixture
def world(platform_config: PlatformConfig) -> World:
    return World(platform_config)


def test_out_of_memory_resubmits_the_step_with_more_memory_and_the_step_after_it_onto_the_new_job(
    world: World,
) -> None:
    prep, evaluate = world.job("prep"), world.job("evaluate")
    failed = world.fail("train", "out_of_memory")

    recovered = world.recoverer.recover(failed)

    assert recovered.kind == "recovered"
    new_train, new_evaluate = world.batch.submitted[3:]
    assert len(world.batch.submitted) == 5, "the failed step and the one after it: prep is not run again"
    assert new_train["jobName"] == f"oom-pipe-train-{world.run_id}-r1"
    memory = [
        item["value"] for item in new_train["containerOverrides"]["resourceRequirements"] if item["type"] == "MEMORY"
    ]
    assert memory == ["32768"]
    assert new_train["dependsOn"] == [{"jobId": prep.job_id}], "on prep's job, which succeeded"
    assert new_evaluate["dependsOn"] == [{"jobId": recovered.job_ids["train"]}], "on the new train job"
    train, evaluate_again = world.job("train"), world.job("evaluate")
    assert (train.job_id, evaluate_again.job_id) == (recovered.job_ids["train"], recovered.job_ids["evaluate"])
    assert train.recovers == failed.job_id
    assert train.resources.memory_mib == 32768
    assert train.recovery_counts.out_of_memory == 1
    assert train.recovery_story == ["ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"]
    assert train.recovery_policy is not None
    assert evaluate_again.recovers == evaluate.job_id
    assert evaluate_again.depends_on == [train.job_id]
    assert world.table.jobs[failed.job_id].recovered_by == train.job_id
    assert world.table.jobs[evaluate.job_id].recovered_by == evaluate_again.job_id
    assert [ref.step for ref in world.table.runs[world.run_id].jobs] == ["prep", "train", "evaluate"]


def test_the_same_stream_record_again_submits_nothing(world: World) -> None:
    failed = world.fail("train", "out_of_memory")
    first = world.recoverer.recover(failed)

    again = world.recoverer.recover(failed)  # the stream's image is as tracking wrote it: no recovered_by

    assert again.kind == "done_before"
    assert again.job_ids == {"train": first.job_ids["train"]}
    assert len(world.batch.submitted) == 5


@pytest.mark.parametrize("crash_at", ["write_recovered", "rewire_run", "mark_recovered"])
def test_a_crash_at_any_write_is_finished_by_the_redelivery_without_a_second_submission(
    world: World, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = world.fail("train", "out_of_memory")
    evaluate = world.job("evaluate")
    real = getattr(world.table, crash_at)

    def crash(*arguments: object, **keywords: object) -> object:
        real(*arguments, **keywords)  # the write is made, then the function dies
        raise RuntimeError("the function's process died")

    monkeypatch.setattr(world.table, crash_at, crash)
    with pytest.raises(RuntimeError):
        world.recoverer.recover(failed)
    monkeypatch.setattr(world.table, crash_at, real)

    recovered = world.recoverer.recover(failed)

    assert recovered.kind == "recovered"
    assert recovered.adopted == 2, "both new jobs found by name"
    assert len(world.batch.submitted) == 5
    assert world.table.jobs[failed.job_id].recovered_by == recovered.job_ids["train"]
    assert world.table.jobs[evaluate.job_id].recovered_by == recovered.job_ids["evaluate"]
    assert world.job("evaluate").recovers == evaluate.job_id
    assert world.job("train").recovers == failed.job_id


def test_spot_reclaims_move_the_step_to_the_routes_on_demand_queue(world: World) -> None:
    failed = world.fail("train", "spot_reclaim", reclaims=2)
    assert failed.queue == "gpu-shared"

    world.recoverer.recover(failed)

    new_train = world.batch.submitted[3]
    assert new_train["jobQueue"].endswith("job-queue/gpu-on-demand")
    assert new_train["retryStrategy"]["attempts"] == 1, "the attempts the reclaims left"
    train = world.job("train")
    assert (train.queue, train.recovery_counts.spot_fallback, train.recovery_counts.spot_reclaims) == (
        "gpu-on-demand",
        1,
        2,
    )
    assert train.recovery_story == [
        "reclaimed 2 times on spot queue `gpu-shared`; resubmitted on on-demand queue `gpu-on-demand`"
    ]


def test_a_second_recovery_of_a_step_carries_the_whole_story_and_new_names(world: World) -> None:
    world.recoverer.recover(world.fail("train", "out_of_memory"))
    again = world.recoverer.recover(world.fail("train", "out_of_memory"))

    assert again.kind == "recovered"
    assert world.batch.submitted[5]["jobName"] == f"oom-pipe-train-{world.run_id}-r2"
    train = world.job("train")
    assert train.resources.memory_mib == 65536
    assert train.recovery_story == [
        "ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)",
        "ran out of memory with 32 GiB; retrying with 64 GiB (2 of 2)",
    ]
    assert len({request["jobName"] for request in world.batch.submitted}) == 7


def test_a_run_that_has_ended_gets_no_recovery(world: World) -> None:
    failed = world.fail("train", "out_of_memory")
    world.table.set_run_status(world.run_id, "vision", "cancelled", expected={"running"})

    assert world.recoverer.recover(failed).kind == "run_ended"
    assert len(world.batch.submitted) == 3


def test_a_new_job_batch_refuses_makes_the_failure_final_and_stops_what_was_submitted(world: World) -> None:
    failed = world.fail("train", "out_of_memory")
    world.batch.refuse.add("evaluate")

    recovered = world.recoverer.recover(failed)

    assert recovered.kind == "impossible"
    assert len(world.batch.submitted) == 4
    assert world.batch.terminated == [world.batch.by_name[world.batch.submitted[3]["jobName"]]]
    final = world.table.jobs[failed.job_id].recovery_final
    assert final is not None
    assert final.startswith("Batch refused its new job")
    assert world.table.jobs[failed.job_id].recovered_by is None
    assert world.table.jobs[failed.job_id].recovery is None, "no longer due: the run may end"


def test_a_spec_file_that_is_gone_makes_the_failure_final(world: World) -> None:
    failed = world.fail("train", "out_of_memory")
    del world.bucket.specs[KEY]

    assert world.recoverer.recover(failed).kind == "impossible"
    assert world.table.jobs[failed.job_id].recovery_final == "its spec file can no longer be read: the file was deleted"
    assert len(world.batch.submitted) == 3

    world.bucket.specs[KEY] = SPEC  # the same stream record again, the file back: the failure stays final
    assert world.recoverer.recover(failed).kind == "not_due"
    assert len(world.batch.submitted) == 3


def test_a_job_without_a_due_recovery_is_left_alone(world: World) -> None:
    assert world.recoverer.recover(world.job("train")).kind == "not_due"
    assert len(world.batch.submitted) == 3


SWEEP_KEY = "incoming/vision/lr-sweep.yaml"
SWEEP_SPEC = b"""version: 1
name: lr-sweep
team: vision
environment: adhoc
job_definition: trainer
steps:
  - name: sweep
    command: [python, train.py, --lr, Ref::lr]
    resources: {vcpus: 2, memory_mib: 16384}
    sweep: {lr: ["0.1", "0.01", "0.001", "0.0001"], seed: ["1", "2", "3", "4", "5"]}
    retries: {out_of_memory: {times: 2}}
  - name: report
    depends_on: [sweep]
    command: [python, report.py]
    resources: {vcpus: 1, memory_mib: 2048}
"""


def test_a_sweep_resubmits_one_array_of_just_its_failed_children_and_the_step_after_it(
    platform_config: PlatformConfig,
) -> None:

    table, batch, bucket = MemoryTable(), FakeBatch(), FakeBucket({SWEEP_KEY: SWEEP_SPEC})
    parts = {"table": table, "batch": batch, "bucket": bucket, "config": FixedConfig(platform_config)}
    submitter = Submitter(**parts, clock=lambda: T0)  # type: ignore[arg-type]
    outcome = submitter.submit(Drop(source=SpecSource(bucket="jobs", key=SWEEP_KEY, version_id="v1"), message_id="m"))
    submitter.flush()
    assert outcome.run_id is not None
    table.set_run_status(outcome.run_id, "vision", "running", expected={"submitted"})
    ref = next(ref for ref in table.runs[outcome.run_id].jobs if ref.step == "sweep")
    job = table.jobs[ref.job_id]
    due = decide_children(
        job.recovery_policy,
        failed={3: ("out_of_memory", 1), 7: ("out_of_memory", 1), 8: ("out_of_memory", 1), 9: ("other", 1)},
        size=20,
        memory_mib=job.resources.memory_mib,
        queue=job.queue,
        queue_arn=job.queue_arn,
        counts=job.recovery_counts,
    ).due
    failed = job.model_copy(update={"status": "FAILED", "recovery": due})
    table.jobs[job.job_id] = failed
    recoverer = Recoverer(**parts, clock=lambda: T0)  # type: ignore[arg-type]

    recovered = recoverer.recover(failed)
    assert recoverer.recover(failed).kind == "done_before"

    assert recovered.kind == "recovered"
    new_sweep, new_report = batch.submitted[2:]
    assert len(batch.submitted) == 4, "one array of the failed children, and the step after it"
    assert new_sweep["jobName"] == f"lr-sweep-sweep-{outcome.run_id}-r1"
    assert new_sweep["arrayProperties"] == {"size": 3}
    environment = {item["name"]: item["value"] for item in new_sweep["containerOverrides"]["environment"]}
    assert environment["BATCHDROP_CHILD_INDICES"] == "3,7-8"
    assert new_report["dependsOn"] == [{"jobId": recovered.job_ids["sweep"]}]
    record = table.jobs[recovered.job_ids["sweep"]]
    assert (record.array_size, record.child_indices, record.resources.memory_mib) == (3, "3,7-8", 32768)
    assert record.sweep is None, "not on its record, which every state change updates"
    whole = {"lr": ["0.1", "0.01", "0.001", "0.0001"], "seed": ["1", "2", "3", "4", "5"]}
    assert table.sweeps == {job.job_id: whole, record.job_id: whole}, "beside each: children's values by original index"
    assert record.recovery_story == ["3 of 20 children ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"]
    assert next(ref for ref in table.runs[outcome.run_id].jobs if ref.step == "sweep").array_size == 3


BRANCHES_KEY = "incoming/vision/branches.yaml"
OOM = {"retries": "{out_of_memory: {times: 2}}"}
BRANCHES = pipeline_spec(
    "branches",
    ("prep", "left", "right", "join"),
    right={"depends_on": "[prep]", **OOM},
    left=OOM,
    join={"depends_on": "[left, right]"},
)


def test_two_branches_recovered_at_once_leave_one_join_waiting_for_both_new_jobs(
    world: World, platform_config: PlatformConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two steps fail together, and the second recovery reads the run before the first moves it: its copy of
    the joining step waits for the first branch's failed job. Its rewiring is refused, that stale copy is
    stopped, and the retry submits the join again, named for the jobs it waits for now (not adopted)."""
    world.bucket.specs[BRANCHES_KEY] = BRANCHES
    parts = {"table": world.table, "batch": world.batch, "bucket": world.bucket, "config": FixedConfig(platform_config)}
    submitter = Submitter(**parts, clock=lambda: T0)  # type: ignore[arg-type]
    outcome = submitter.submit(
        Drop(source=SpecSource(bucket="jobs", key=BRANCHES_KEY, version_id="v1"), message_id="b")
    )
    submitter.flush()
    assert outcome.run_id is not None
    world.run_id = outcome.run_id
    world.table.set_run_status(world.run_id, "vision", "running", expected={"submitted"})
    left, right = world.fail("left", "out_of_memory"), world.fail("right", "out_of_memory")
    stale = world.table.runs[world.run_id]

    assert world.recoverer.recover(left).kind == "recovered"
    new_left = world.job("left").job_id
    fresh_get_run = world.table.get_run
    monkeypatch.setattr(world.table, "get_run", lambda run_id: stale)  # read before the first rewiring
    with pytest.raises(RecordConflict):
        world.recoverer.recover(right)
    stale_join = world.batch.submitted[-1]
    assert {"jobId": left.job_id} in stale_join["dependsOn"]
    assert world.batch.by_name[stale_join["jobName"]] in world.batch.terminated, "the stale copy is stopped"

    monkeypatch.setattr(world.table, "get_run", fresh_get_run)  # the stream hands the record over again
    assert world.recoverer.recover(right).kind == "recovered"
    join = world.job("join")
    assert set(join.depends_on) == {new_left, world.job("right").job_id}
    assert join.job_name != stale_join["jobName"], "a new job, not the stale copy adopted by its name"
    assert world.table.runs[world.run_id].jobs[3].job_id == join.job_id
