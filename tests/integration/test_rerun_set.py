"""`batchdrop rerun --set` end to end, on the whole control plane: a pipeline whose evaluation ran out of
memory is rerun with more memory for it; only the evaluation is submitted, with what was set, and the run
succeeds. A `--set` the spec's rules refuse is never uploaded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from tests.integration.operator_cli import Cli
from tests.integration.runs import drop_and_wait, run_ids
from tests.integration.test_resume import pipeline, steps_submitted

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    fates=[JobFate(spec="set-oom", step="evaluate", outcome="out_of_memory", below_memory_mib=8192)],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.4},
)


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def test_rerun_with_more_memory_for_the_step_that_ran_out_reruns_it_alone(plane: ControlPlane, cli: Cli) -> None:
    first = drop_and_wait(plane, "incoming/vision/set-oom.yaml", pipeline("set-oom"))
    assert first.status == "failed"

    code, out, err = cli("rerun", first.run_id, "--set", "evaluate.resources.memory_mib=8192", "--wait")

    assert code == 0, err
    assert "set evaluate.resources.memory_mib: 4096 → 8192" in err
    rerun = next(run for run in plane.table.list_runs("vision", limit=100)[0] if run.resumes == first.run_id)
    assert rerun.status == "succeeded"  # its evaluation runs out of memory below 8192 MiB: it had 8192
    assert steps_submitted(plane, rerun) == ["evaluate"]  # prep and train reused: never submitted again
    assert f"train            reused (run {first.run_id}, job " in out


def test_a_set_the_spec_refuses_is_not_uploaded(plane: ControlPlane, cli: Cli) -> None:
    first = drop_and_wait(plane, "incoming/vision/set-oom.yaml", pipeline("set-oom"))
    before = run_ids(plane)
    cli.calls.clear()  # this test's own upload is not the command's

    code, out, _ = cli("rerun", first.run_id, "--set", "train.resources.memory_mib=lots", "--json")
    assert code == 1
    refusal = json.loads(out)
    assert (refusal["uploaded"], refusal["problems"][0]["path"]) == (False, "steps[1].resources.memory_mib")

    code, out, err = cli("rerun", first.run_id, "--set", "train.resources.memory_mib=99999999")
    assert code == 1
    assert "not uploaded; the stack would reject it" in out
    assert "steps[1].resources.memory_mib: must be at most 25165824, not 99999999" in out
    assert "set train.resources.memory_mib: 4096 → 99999999" in err

    code, _, err = cli("rerun", first.run_id, "--set", "training.resources.memory_mib=8192")
    assert code == 2
    assert "the spec has no step `training`; its steps are prep, train, evaluate" in err
    assert "s3:PutObject" not in cli.calls
    assert run_ids(plane) == before
