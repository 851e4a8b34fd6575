"""A resumed run's usage, end to end (docs/recovery.md, *Edge cases*): the steps it reused ran once, for the
run it resumes, and are counted there; its own usage is what its own jobs used, and its summary still lists the
reused steps, each naming the run whose job it is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from batchdrop.events.contract import Usage
from batchdrop.store.records import RunRecord
from tests.integration.runs import drop_and_wait

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    fates=[JobFate(spec="use-pipe", step="evaluate", outcome="fail", exit_code=1, first_job_only=True)],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.4, "child": 0.1},
)
PIPELINE = """\
version: 1
name: use-pipe
team: vision
job_definition: trainer
steps:
  - name: prep
    command: [python, prep.py]
    resources: {{vcpus: 2, memory_mib: 4096}}
  - name: train
    depends_on: [prep]
    command: [python, train.py]
    resources: {{vcpus: 4, memory_mib: 8192}}
  - name: evaluate
    depends_on: [train]
    command: [python, {evaluate}]
    resources: {{vcpus: 1, memory_mib: 2048}}
"""


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def drop(plane: ControlPlane, body: str) -> RunRecord:
    """Upload the spec; its new run once it has ended (test_resume's own wait)."""
    return drop_and_wait(plane, "incoming/vision/use-pipe.yaml", body.encode())


def used(plane: ControlPlane, job_id: str) -> Usage:
    record = plane.table.get_job(job_id)
    assert record is not None
    assert record.usage is not None
    return record.usage


def test_a_resumed_runs_usage_counts_only_the_jobs_it_ran(plane: ControlPlane) -> None:
    first = drop(plane, PIPELINE.format(evaluate="evaluate.py"))
    assert first.status == "failed"

    second = drop(plane, PIPELINE.format(evaluate="evaluate_v2.py") + "resume: latest\n")

    assert second.status == "succeeded"
    assert second.resumes == first.run_id
    steps = {step.step: step for step in second.steps}
    assert [step.step for step in second.steps] == ["prep", "train", "evaluate"], "reused steps still listed"
    assert (steps["prep"].reused_from, steps["train"].reused_from, steps["evaluate"].reused_from) == (
        first.run_id,
        first.run_id,
        None,
    )
    evaluate = used(plane, steps["evaluate"].job_id)
    assert second.usage is not None
    assert second.usage.vcpu_hours == pytest.approx(evaluate.vcpu_hours), "prep and train ran for the first run"
    assert second.usage.memory_gib_hours == pytest.approx(evaluate.memory_gib_hours)
    train = used(plane, steps["train"].job_id)
    assert train.vcpu_hours > 0
    assert first.usage is not None
    assert first.usage.vcpu_hours >= train.vcpu_hours, "counted in the run it ran for"
