"""Resuming a run (docs/resume.md), against in-memory fakes: which steps are reused, which submitted, and
which runs cannot be resumed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchdrop.platform.config import PlatformConfig
from batchdrop.store.items import Children
from batchdrop.store.records import SpecSource
from batchdrop.submit.submitter import Drop, Outcome, Submitter
from tests.conftest import EXAMPLES
from tests.unit.fakes import FakeBatch, FakeBucket, FixedConfig, MemoryTable

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
KEY = "incoming/vision/resnet-pipeline.yaml"
PIPELINE = (EXAMPLES / "specs" / "resnet-pipeline.yaml").read_text()


class World:
    def __init__(self, config: PlatformConfig) -> None:
        self.table, self.batch, self.bucket = MemoryTable(), FakeBatch(), FakeBucket()
        self.now = T0
        self.submitter = Submitter(
            table=self.table, batch=self.batch, bucket=self.bucket, config=FixedConfig(config), clock=lambda: self.now
        )
        self.drops = 0

    def drop(self, text: str, key: str = KEY) -> Outcome:
        self.drops += 1
        self.now += timedelta(minutes=1)
        self.bucket.specs[key] = text.encode()
        source = SpecSource(bucket="jobs", key=key, version_id=f"v{self.drops}")
        outcome = self.submitter.submit(Drop(source=source, message_id=f"m{self.drops}"))
        self.submitter.flush()
        return outcome

    def end(self, outcome: Outcome, statuses: dict[str, str], run_status: str) -> None:
        """What tracking would have recorded: each step's job's end, and the run's."""
        for ref in outcome.jobs:
            job = self.table.jobs[ref.job_id]
            self.table.jobs[ref.job_id] = job.model_copy(update={"status": statuses.get(ref.step, job.status)})
        assert outcome.run_id is not None
        self.table.runs[outcome.run_id] = self.table.runs[outcome.run_id].model_copy(update={"status": run_status})


@pytest.fixture
def world(platform_config: PlatformConfig) -> World:
    return World(platform_config)


def failed_evaluation(world: World) -> Outcome:
    first = world.drop(PIPELINE)
    world.end(first, {"prep": "SUCCEEDED", "train": "SUCCEEDED", "evaluate": "FAILED"}, "failed")
    return first


def test_a_changed_evaluation_reuses_prep_and_train_and_submits_evaluation(world: World) -> None:
    first = failed_evaluation(world)
    before = len(world.batch.submitted)
    second = world.drop(PIPELINE.replace("evaluate.py", "evaluate_v2.py") + "resume: latest\n")
    assert second.kind == "submitted"
    assert [request["jobName"].split("-")[2] for request in world.batch.submitted[before:]] == ["evaluate"]
    old = {ref.step: ref.job_id for ref in first.jobs}
    by_step = {ref.step: ref for ref in second.jobs}
    assert [ref.step for ref in second.jobs] == ["prep", "train", "evaluate"]
    assert (by_step["prep"].job_id, by_step["prep"].reused_from) == (old["prep"], first.run_id)
    assert (by_step["train"].job_id, by_step["train"].reused_from) == (old["train"], first.run_id)
    assert by_step["evaluate"].reused_from is None
    assert by_step["evaluate"].job_id != old["evaluate"]
    assert second.run_id is not None
    assert world.table.runs[second.run_id].resumes == first.run_id
    # the evaluation waits for nothing in Batch: train succeeded already; its record names train's job
    assert "dependsOn" not in world.batch.submitted[-1]
    assert world.table.jobs[by_step["evaluate"].job_id].depends_on == [old["train"]]
    assert world.table.jobs[old["train"]].run_id == first.run_id  # the reused job's record stays its run's


def test_a_changed_training_reruns_training_and_everything_after_it(world: World) -> None:
    first = failed_evaluation(world)
    second = world.drop(PIPELINE.replace("train.py]", "train.py, --epochs, '5']") + f"resume: {first.run_id}\n")
    assert [ref.step for ref in second.jobs if ref.reused_from] == ["prep"]


def test_a_failed_step_is_rerun_even_when_unchanged(world: World) -> None:
    failed_evaluation(world)
    second = world.drop(PIPELINE + "resume: latest\n")
    assert [ref.step for ref in second.jobs if ref.reused_from is None] == ["evaluate"]


def test_rerun_forces_a_step_and_those_after_it(world: World) -> None:
    failed_evaluation(world)
    second = world.drop(PIPELINE + "resume: latest\nrerun: [train]\n")
    assert [ref.step for ref in second.jobs if ref.reused_from is None] == ["train", "evaluate"]


def test_resuming_a_resumed_run_reuses_the_original_jobs(world: World) -> None:
    first = failed_evaluation(world)
    second = world.drop(PIPELINE + "resume: latest\n")
    world.end(second, {"evaluate": "FAILED"}, "failed")
    third = world.drop(PIPELINE + "resume: latest\n")
    reused = {ref.step: (ref.job_id, ref.reused_from) for ref in third.jobs if ref.reused_from}
    original = {ref.step: ref.job_id for ref in first.jobs}
    assert reused == {"prep": (original["prep"], first.run_id), "train": (original["train"], first.run_id)}


def test_a_run_that_all_succeeded_has_nothing_to_rerun(world: World) -> None:
    first = world.drop(PIPELINE)
    world.end(first, {"prep": "SUCCEEDED", "train": "SUCCEEDED", "evaluate": "SUCCEEDED"}, "succeeded")
    second = world.drop(PIPELINE + "resume: latest\n")
    assert second.kind == "rejected"
    assert [problem.code for problem in second.problems] == ["nothing_to_rerun"]


@pytest.mark.parametrize(
    ("resume", "code"),
    [("latest", "resume_not_found"), ("abcdefghijklmnopqrst", "resume_not_found")],
)
def test_a_run_that_does_not_exist_cannot_be_resumed(world: World, resume: str, code: str) -> None:
    outcome = world.drop(PIPELINE + f"resume: {resume}\n")
    assert outcome.kind == "rejected"
    assert [problem.code for problem in outcome.problems] == [code]
    assert world.batch.submitted == []


def test_a_run_still_running_cannot_be_resumed(world: World) -> None:
    world.drop(PIPELINE)
    outcome = world.drop(PIPELINE + "resume: latest\n")
    assert [problem.code for problem in outcome.problems] == ["resume_not_ended"]
    assert "still submitted" in outcome.problems[0].message


def test_a_run_of_another_team_cannot_be_resumed(world: World) -> None:
    theirs = world.drop(PIPELINE.replace("team: vision", "team: nlp").replace("trainer", "trainer"), key=KEY)
    assert theirs.run_id is not None
    stored = world.table.runs[theirs.run_id]
    world.table.runs[theirs.run_id] = stored.model_copy(update={"team": "nlp", "status": "failed"})
    outcome = world.drop(PIPELINE + f"resume: {theirs.run_id}\n")
    assert [problem.code for problem in outcome.problems] == ["resume_other_team"]
    assert "a team resumes only its own runs" in outcome.problems[0].message


def test_a_bad_resume_value_and_a_rerun_without_resume_are_explained(world: World) -> None:
    bad = world.drop(PIPELINE + "resume: yesterday\n")
    assert [problem.code for problem in bad.problems] == ["bad_format"]
    assert "`latest` or a run id" in bad.problems[0].message
    lone = world.drop(PIPELINE + "rerun: [train, score]\n")
    assert sorted(problem.code for problem in lone.problems) == ["rerun_without_resume", "unknown_step"]


def test_a_resumed_drop_redelivered_after_its_records_failed_submits_nothing_twice(world: World) -> None:
    first = failed_evaluation(world)
    world.drops += 1
    world.now += timedelta(minutes=1)
    world.bucket.specs[KEY] = (PIPELINE + "resume: latest\n").encode()
    delivery = Drop(source=SpecSource(bucket="jobs", key=KEY, version_id="again"), message_id="m-again")
    run_id = Submitter.run_id(delivery.source)
    world.table.refuse_runs.add(run_id)  # DynamoDB refuses the new run's records: the message returns
    world.submitter.submit(delivery)
    assert world.submitter.flush() == {"m-again"}
    world.table.refuse_runs.clear()
    world.now += timedelta(minutes=20)  # the redelivery, after the claim went stale

    again = world.submitter.submit(delivery)

    assert again.kind == "submitted"
    evaluations = [request for request in world.batch.submitted if f"-evaluate-{run_id}" in request["jobName"]]
    assert len(evaluations) == 1, "the redelivery adopted the evaluation by its name"
    assert {ref.step: ref.reused_from for ref in again.jobs} == {
        "prep": first.run_id,
        "train": first.run_id,
        "evaluate": None,
    }


GRID = """\
version: 1
name: grid
job_definition: trainer
resources: {vcpus: 4, memory_mib: 16384, gpus: 1}
command: [python, train.py]
sweep:
  lr: ["0.1", "0.01", "0.001"]
  seed: ["1", "2", "3", "4"]
"""
GRID_KEY = "incoming/vision/grid.yaml"


def child_states(size: int, failed: set[int]) -> str:
    """An array's children's states as tracking keeps them: attempt 1, succeeded (5) or failed (6)."""
    return "".join("16" if index in failed else "15" for index in range(size))


def sweep_with_failed_children(world: World, failed: set[int]) -> Outcome:
    first = world.drop(GRID, GRID_KEY)
    (ref,) = first.jobs
    world.table.children[ref.job_id] = Children(states=child_states(12, failed))
    world.end(first, {"main": "FAILED"}, "failed")
    return first


def environment_of(request: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in request["containerOverrides"]["environment"]}


def test_a_resumed_sweep_runs_only_its_children_that_did_not_succeed(world: World) -> None:
    first = sweep_with_failed_children(world, {3, 7})
    second = world.drop(GRID + "resume: latest\n", GRID_KEY)
    (ref,) = second.jobs
    request = world.batch.submitted[-1]
    assert request["arrayProperties"] == {"size": 2}, "an array of the 2 failed children, not of 12"
    assert environment_of(request)["BATCHDROP_CHILD_INDICES"] == "3,7"
    assert (ref.array_size, ref.reused_children, ref.reused_children_from) == (2, 10, first.run_id)
    assert ref.reused_from is None, "the step is submitted: its job is the new run's"
    record = world.table.jobs[ref.job_id]
    assert (record.child_indices, record.reused_children) == ("3,7", "0-2,4-6,8-11")
    assert len(world.table.child_hashes[ref.job_id]) == 12, "every child's hash, by its index in the plan"


def test_a_resumed_sweep_with_one_child_left_submits_a_single_job_for_it(world: World) -> None:
    sweep_with_failed_children(world, {5})
    (ref,) = world.drop(GRID + "resume: latest\n", GRID_KEY).jobs
    request = world.batch.submitted[-1]
    assert "arrayProperties" not in request
    assert environment_of(request)["BATCHDROP_CHILD_INDICES"] == "5"
    assert (ref.array_size, ref.reused_children) == (None, 11)


def test_a_point_added_to_a_sweep_runs_just_the_new_points(world: World) -> None:
    first = world.drop(GRID, GRID_KEY)
    world.end(first, {"main": "SUCCEEDED"}, "succeeded")
    wider = GRID.replace('"0.001"]', '"0.001", "0.0001"]')
    (ref,) = world.drop(wider + "resume: latest\n", GRID_KEY).jobs
    request = world.batch.submitted[-1]
    # 4 lr values x 4 seeds: the new lr's 4 children are the last 4 indices
    assert environment_of(request)["BATCHDROP_CHILD_INDICES"] == "12-15"
    assert (request["arrayProperties"], ref.reused_children) == ({"size": 4}, 12)


def test_children_a_recovery_ran_again_and_that_succeeded_are_not_run_a_third_time(world: World) -> None:
    first = sweep_with_failed_children(world, {3, 7})
    (original,) = first.jobs
    recovery = world.table.jobs[original.job_id].model_copy(
        update={"job_id": "recovery-1", "recovers": original.job_id, "array_size": 2, "child_indices": "3,7"}
    )
    world.table.jobs["recovery-1"] = recovery
    world.table.children["recovery-1"] = Children(states="1516")  # child 3 succeeded this time, 7 failed again
    assert first.run_id is not None
    run = world.table.runs[first.run_id]
    world.table.runs[first.run_id] = run.model_copy(
        update={"jobs": [run.jobs[0].model_copy(update={"job_id": "recovery-1"})]}
    )
    (ref,) = world.drop(GRID + "resume: latest\n", GRID_KEY).jobs
    assert environment_of(world.batch.submitted[-1])["BATCHDROP_CHILD_INDICES"] == "7"
    assert ref.reused_children == 11


def test_rerun_runs_a_sweep_whole(world: World) -> None:
    sweep_with_failed_children(world, {3})
    (ref,) = world.drop(GRID + "resume: latest\nrerun: [main]\n", GRID_KEY).jobs
    assert world.batch.submitted[-1]["arrayProperties"] == {"size": 12}
    assert ref.reused_children is None


def test_a_changed_command_runs_every_child_again(world: World) -> None:
    sweep_with_failed_children(world, {3})
    changed = GRID.replace("train.py]", "train.py, --fast]")
    (ref,) = world.drop(changed + "resume: latest\n", GRID_KEY).jobs
    assert world.batch.submitted[-1]["arrayProperties"] == {"size": 12}
    assert ref.reused_children is None
