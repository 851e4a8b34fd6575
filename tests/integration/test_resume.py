"""Resume end to end, on the whole control plane (docs/resume.md): a pipeline whose evaluation failed is
dropped again with `resume: latest` and a changed evaluation, or rerun with `batchdrop rerun`; only what
failed or changed is submitted, the reused steps keep their jobs, and the new run ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from batchdrop.store.records import RunRecord
from tests.integration.operator_cli import Cli
from tests.integration.runs import batch_job_names, drop_and_wait, run_ids, wait_for_new_run
from tests.integration.test_sweep_definitions import sweep_beside

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    fates=[
        JobFate(spec="res-pipe", step="evaluate", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="res-rerun", step="evaluate", outcome="fail", exit_code=1),
        JobFate(spec="res-grid", step="main", outcome="fail", exit_code=1, fail_children=(3, 7), first_job_only=True),
    ],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.4, "child": 0.1},
)
PIPELINE = """\
version: 1
name: {name}
team: vision
job_definition: trainer
steps:
  - name: prep
    command: [python, prep.py]
    resources: {{vcpus: 2, memory_mib: 4096}}
  - name: train
    depends_on: [prep]
    command: [python, train.py]
    resources: {{vcpus: 2, memory_mib: 4096}}
  - name: evaluate
    depends_on: [train]
    command: [python, {evaluate}]
    resources: {{vcpus: 2, memory_mib: {memory}}}
"""


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def pipeline(name: str, evaluate: str = "evaluate.py", memory: int = 4096, extra: str = "") -> bytes:
    return (PIPELINE.format(name=name, evaluate=evaluate, memory=memory) + extra).encode()


def steps_submitted(plane: ControlPlane, run: RunRecord) -> list[str]:
    """The steps of every Batch job made for the run."""
    return sorted({name.split("-")[2] for name in batch_job_names(plane, run)})


def test_a_changed_evaluation_with_resume_latest_reuses_prep_and_train(plane: ControlPlane) -> None:
    key = "incoming/vision/res-pipe.yaml"
    first = drop_and_wait(plane, key, pipeline("res-pipe"))
    assert first.status == "failed"
    assert steps_submitted(plane, first) == ["evaluate", "prep", "train"]

    fixed = pipeline("res-pipe", evaluate="evaluate_v2.py", memory=8192, extra="resume: latest\n")
    second = drop_and_wait(plane, key, fixed)

    assert second.status == "succeeded"
    assert second.resumes == first.run_id
    assert steps_submitted(plane, second) == ["evaluate"]  # no SubmitJob for prep and train
    earlier = {ref.step: ref.job_id for ref in first.jobs}
    reused = {ref.step: (ref.job_id, ref.reused_from) for ref in second.jobs if ref.reused_from}
    assert reused == {"prep": (earlier["prep"], first.run_id), "train": (earlier["train"], first.run_id)}
    receipt = plane.aws.client("s3").get_object(Bucket=plane.bucket, Key="receipts/vision/res-pipe.yaml.json")
    assert b'"reused_from"' in receipt["Body"].read()
    assert [step.step for step in second.steps] == ["prep", "train", "evaluate"]


def test_batchdrop_rerun_of_a_failed_run_reruns_only_the_failed_step(plane: ControlPlane, cli: Cli) -> None:
    first = drop_and_wait(plane, "incoming/vision/res-rerun.yaml", pipeline("res-rerun"))
    assert first.status == "failed"

    code, out, err = cli("rerun", first.run_id, "--wait")

    assert code == 3, err  # its evaluation fails again: the exit code says the run failed
    rerun = next(run for run in plane.table.list_runs("vision", limit=100)[0] if run.resumes == first.run_id)
    assert rerun.source.key.startswith("incoming/vision/res-rerun.rerun-")
    assert steps_submitted(plane, rerun) == ["evaluate"]
    assert f"prep             reused (run {first.run_id}, job " in out
    assert f"train            reused (run {first.run_id}, job " in out

    cli.calls.clear()  # this test's own look at Batch is not the command's
    code, out, err = cli("rerun", first.run_id, "--steps", "train", "--wait")
    assert code == 3, err
    again = next(
        run
        for run in plane.table.list_runs("vision", limit=100)[0]
        if run.resumes == first.run_id and run.run_id != rerun.run_id
    )
    assert steps_submitted(plane, again) == ["evaluate", "train"]


def test_a_run_of_another_team_cannot_be_resumed(plane: ControlPlane) -> None:
    theirs = drop_and_wait(plane, "incoming/vision/res-pipe.yaml", pipeline("res-pipe"))
    known = run_ids(plane, "forecasting")
    body = f"""\
version: 1
name: steal
job_definition: triage
command: [python, x.py]
resources: {{vcpus: 1, memory_mib: 2048}}
resume: {theirs.run_id}
""".encode()
    plane.aws.client("s3").put_object(Bucket=plane.bucket, Key="incoming/forecasting/steal.yaml", Body=body)
    run = wait_for_new_run(plane, known, team="forecasting")

    assert run.status == "rejected"
    assert [problem.code for problem in run.problems] == ["resume_other_team"]
    assert run.jobs == []


GRID = b"""\
version: 1
name: res-grid
team: vision
job_definition: trainer
command: [python, train.py]
resources: {vcpus: 2, memory_mib: 4096}
sweep:
  lr: ["0.1", "0.01", "0.001"]
  seed: ["1", "2", "3", "4"]
"""


def test_a_resumed_sweep_runs_again_only_its_two_failed_children(plane: ControlPlane) -> None:
    key = "incoming/vision/res-grid.yaml"
    first = drop_and_wait(plane, key, GRID)
    assert first.status == "failed"

    second = drop_and_wait(plane, key, GRID + b"resume: latest\n")

    assert second.status == "succeeded"
    (ref,) = second.jobs
    assert (ref.array_size, ref.reused_children, ref.reused_children_from) == (2, 10, first.run_id)
    (job,) = plane.aws.client("batch").describe_jobs(jobs=[ref.job_id])["jobs"]
    assert job["arrayProperties"]["size"] == 2, "one array of the 2 failed children, not 12 again"
    variables = {item["name"]: item["value"] for item in job["container"]["environment"]}
    assert variables["BATCHDROP_CHILD_INDICES"] == "3,7"
    record = plane.table.get_job(ref.job_id)
    assert record is not None
    assert (record.child_indices, record.reused_children) == ("3,7", "0-2,4-6,8-11")
    whole = {"lr": ["0.1", "0.01", "0.001"], "seed": ["1", "2", "3", "4"]}
    assert sweep_beside(plane.table, ref.job_id) == whole, "the whole sweep: children 3 and 7 keep their values"
    assert record.told_children == {"SUCCEEDED": 2}
