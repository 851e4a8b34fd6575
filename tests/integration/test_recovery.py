"""Recovery end to end, on the whole control plane (docs/recovery.md): a spec is dropped, the local Batch
plays its fate (out of memory below a memory, spot reclaims, an exit code), tracking decides, the submit
function replaces the job from the records table's stream, and the run ends as a user would see it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from batchdrop.platform.config import parse_platform_config
from batchdrop.report.records import read_report_records
from batchdrop.spec.sweep import expand_indices
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import JobRecord, RunRecord
from tests.conftest import EXAMPLES
from tests.integration.runs import drop_and_wait
from tests.integration.test_sweep_definitions import sweep_beside
from tests.recordkit import pipeline_spec

pytestmark = pytest.mark.integration

OOM_CHILDREN = tuple(range(5, 1000, 25))
"""40 children of the 1,000-child sweep run out of memory with 4 GiB (and succeed with 8)."""
SCENARIO = Scenario(
    fates=[
        JobFate(spec="rec-oom", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="rec-top", outcome="out_of_memory", below_memory_mib=10_000_000),
        JobFate(spec="rec-spot", outcome="spot_reclaim", times=2),
        JobFate(spec="rec-bug", outcome="fail", exit_code=1),
        JobFate(spec="rec-pipe", step="train", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="rec-sweep", outcome="out_of_memory", below_memory_mib=8192, fail_children=OOM_CHILDREN),
    ],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.5, "child": 0.2},
)
CONFIG = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
ONE_JOB = """\
version: 1
name: {name}
team: vision
job_definition: trainer
command: [python, job.py]
resources: {resources}
retries: {retries}
"""
PIPELINE = pipeline_spec("rec-pipe", train={"retries": "{out_of_memory: {times: 2, grow: 2.0}}"})


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def drop(plane: ControlPlane, name: str, body: bytes) -> RunRecord:
    return drop_and_wait(plane, f"incoming/vision/{name}.yaml", body)


def one_job(name: str, resources: str, retries: str) -> bytes:
    return ONE_JOB.format(name=name, resources=resources, retries=retries).encode()


def batch_jobs(plane: ControlPlane, run: RunRecord) -> list[dict[str, Any]]:
    """Every Batch job of the run (found by the run id its names carry), oldest first."""
    batch = plane.aws.client("batch")
    ids: set[str] = set()
    for queue in CONFIG.queues.values():
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
            summaries = batch.list_jobs(jobQueue=queue.arn, jobStatus=status)["jobSummaryList"]
            ids |= {s["jobId"] for s in summaries if run.run_id in s["jobName"] and ":" not in s["jobId"]}
    jobs = batch.describe_jobs(jobs=sorted(ids))["jobs"] if ids else []
    return sorted(jobs, key=lambda job: job["createdAt"])


def memory_of(job: dict[str, Any]) -> int:
    requirements = job["container"]["resourceRequirements"]
    return int(next(item["value"] for item in requirements if item["type"] == "MEMORY"))


def record(plane: ControlPlane, job_id: str) -> JobRecord:
    found = plane.table.get_job(job_id)
    assert found is not None
    return found


def test_out_of_memory_is_resubmitted_once_with_twice_the_memory_and_the_run_succeeds(plane: ControlPlane) -> None:
    run = drop(plane, "rec-oom", one_job("rec-oom", "{vcpus: 2, memory_mib: 4096}", "{out_of_memory: {times: 2}}"))

    assert run.status == "succeeded"
    first, second = batch_jobs(plane, run)  # exactly one new SubmitJob
    assert memory_of(first) == 4096
    assert (second["jobName"], memory_of(second)) == (f"rec-oom-main-{run.run_id}-r1", 8192)
    assert run.jobs[0].job_id == second["jobId"], "the run names the new job"
    failed, recovered = record(plane, first["jobId"]), record(plane, second["jobId"])
    assert (failed.status, recovered.status) == ("FAILED", "SUCCEEDED")
    assert (failed.failure_class, failed.recovered_by) == ("out_of_memory", recovered.job_id)
    assert recovered.recovers == failed.job_id
    assert recovered.recovery_story == ["ran out of memory with 4 GiB; retrying with 8 GiB (1 of 2)"]
    assert recovered.resources.memory_mib == 8192


def test_out_of_memory_at_the_queues_largest_instance_is_final_in_numbers(plane: ControlPlane) -> None:
    largest = CONFIG.queues["cpu-shared"].max_memory_mib
    run = drop(
        plane, "rec-top", one_job("rec-top", f"{{vcpus: 2, memory_mib: {largest}}}", "{out_of_memory: {times: 2}}")
    )

    assert run.status == "failed"
    (job,) = batch_jobs(plane, run)  # nothing resubmitted
    failed = record(plane, job["jobId"])
    assert failed.recovered_by is None
    assert failed.recovery_final == (
        "ran out of memory with 374.4 GiB, all the largest instance of queue `cpu-shared` has: not resubmitted"
    )


def test_two_spot_reclaims_move_the_job_to_the_on_demand_queue(plane: ControlPlane) -> None:
    run = drop(
        plane,
        "rec-spot",
        one_job(
            "rec-spot",
            "{vcpus: 4, memory_mib: 8192, gpus: 1}",
            "{attempts: 2, on_spot_interruption: true, spot_fallback: {after: 2}}",
        ),
    )

    assert run.status == "succeeded"
    first, second = batch_jobs(plane, run)
    assert first["jobQueue"] == CONFIG.queues["gpu-shared"].arn
    failed = record(plane, first["jobId"])
    assert [end.failure_class for end in failed.attempt_ends] == ["spot_reclaim", "spot_reclaim"], (
        "Batch's two attempts"
    )
    assert second["jobQueue"] == CONFIG.queues["gpu-on-demand"].arn
    recovered = record(plane, second["jobId"])
    assert recovered.status == "SUCCEEDED"
    assert (recovered.queue, recovered.recovers) == ("gpu-on-demand", first["jobId"])
    assert recovered.recovery_counts.spot_fallback == 1


def test_an_exit_code_not_named_transient_is_never_retried(plane: ControlPlane) -> None:
    run = drop(
        plane, "rec-bug", one_job("rec-bug", "{vcpus: 2, memory_mib: 4096}", "{attempts: 3, on_exit_codes: [75]}")
    )

    assert run.status == "failed"
    (job,) = batch_jobs(plane, run)
    failed = record(plane, job["jobId"])
    assert len(failed.attempt_ends) == 1, "Batch did not retry exit 1"
    assert (failed.exit_code, failed.recovery, failed.recovered_by) == (1, None, None)


def test_a_pipelines_later_step_is_resubmitted_onto_its_recovered_step_and_the_run_succeeds(
    plane: ControlPlane,
) -> None:
    run = drop(plane, "rec-pipe", PIPELINE)

    assert run.status == "succeeded"
    jobs = {job["jobName"]: job for job in batch_jobs(plane, run)}
    assert len(jobs) == 5, "prep, train, evaluate; then train and evaluate again: prep is not run again"
    prep, train, evaluate = (jobs[f"rec-pipe-{step}-{run.run_id}"] for step in ("prep", "train", "evaluate"))
    new_train = jobs[f"rec-pipe-train-{run.run_id}-r1"]
    (new_evaluate,) = (job for name, job in jobs.items() if name.startswith(f"rec-pipe-evaluate-{run.run_id}-r1-"))
    assert [ref.job_id for ref in run.jobs] == [prep["jobId"], new_train["jobId"], new_evaluate["jobId"]]
    assert new_train["dependsOn"] == [{"jobId": prep["jobId"]}]
    assert new_evaluate["dependsOn"] == [{"jobId": new_train["jobId"]}]
    statuses = [record(plane, job["jobId"]).status for job in (train, evaluate, new_train, new_evaluate)]
    assert statuses == ["FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert record(plane, evaluate["jobId"]).recovered_by == new_evaluate["jobId"]
    assert record(plane, new_evaluate["jobId"]).recovers == evaluate["jobId"]
    assert record(plane, new_train["jobId"]).recovery_story == [
        "ran out of memory with 4 GiB; retrying with 8 GiB (1 of 2)"
    ]


SWEEP = f"""\
version: 1
name: rec-sweep
team: vision
job_definition: trainer
command: [python, train.py, --lr, Ref::lr]
resources: {{vcpus: 1, memory_mib: 4096}}
sweep: {{lr: {[f"0.{n}" for n in range(1, 11)]}, seed: {[str(n) for n in range(100)]}}}
retries: {{out_of_memory: {{times: 2}}}}
""".encode()


def test_a_sweep_whose_40_children_ran_out_of_memory_reruns_those_40_only_and_succeeds(plane: ControlPlane) -> None:
    run = drop(plane, "rec-sweep", SWEEP)

    assert run.status == "succeeded"
    first, second = batch_jobs(plane, run)  # exactly one new SubmitJob: one array of the 40
    assert first["arrayProperties"]["size"] == 1000
    assert second["jobName"] == f"rec-sweep-main-{run.run_id}-r1"
    assert (second["arrayProperties"]["size"], memory_of(second)) == (40, 8192)
    environment = {item["name"]: item["value"] for item in second["container"]["environment"]}
    assert expand_indices(environment["BATCHDROP_CHILD_INDICES"]) == list(OOM_CHILDREN)
    failed, recovered = record(plane, first["jobId"]), record(plane, second["jobId"])
    assert failed.recovery is not None
    assert failed.recovered_by == recovered.job_id
    assert recovered.status == "SUCCEEDED"
    assert recovered.child_indices == environment["BATCHDROP_CHILD_INDICES"]
    assert recovered.told_children == {"SUCCEEDED": 40}
    assert recovered.recovery_story == [
        "40 of 1,000 children ran out of memory with 4 GiB; retrying with 8 GiB (1 of 2)"
    ]
    # the whole sweep beside each (a recovery's children keep their original index, so their values), and
    # the report reads it with the run's jobs: the first array's failed children are named with their values
    whole = {"lr": [f"0.{n}" for n in range(1, 11)], "seed": [str(n) for n in range(100)]}
    assert sweep_beside(plane.table, first["jobId"]) == whole
    assert sweep_beside(plane.table, second["jobId"]) == whole
    records = read_report_records(plane.table, JobStates(plane.table.client, plane.table.table_name), run.run_id)
    assert {job.job_id: job.sweep for job in records.jobs} == {first["jobId"]: whole, second["jobId"]: whole}
