"""`batchdrop plan --expected` against the whole control plane: after a spec's runs have ended, its plan
prints the expected case from their records (the median run time of each step × the plan's resources and
prices), read without a scan and with only what OperatorPolicy grants; a spec with no earlier runs gets
the worst case and one line saying there is nothing to go by."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from batchdrop_local.batch_lifecycle import Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from tests.conftest import EXAMPLES
from tests.integration.operator_cli import Cli
from tests.integration.runs import drop_and_wait
from tests.recordkit import pipeline_spec

pytestmark = pytest.mark.integration

SCENARIO = Scenario(fates=[], seconds={"queued": 0.2, "starting": 0.2, "running": 1.2})
CONFIG = str(EXAMPLES / "platform.yaml")


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def test_plan_expected_prices_each_steps_median_run_time_from_the_specs_earlier_runs(
    plane: ControlPlane, cli: Cli, tmp_path: Path
) -> None:
    body = pipeline_spec("plan-expected", ["prep", "train"])
    for _ in range(2):
        assert drop_and_wait(plane, "incoming/vision/plan-expected.yaml", body).status == "succeeded"
    spec = tmp_path / "plan-expected.yaml"
    spec.write_bytes(body)
    cli.calls.clear()  # the drops above are not the command's

    document = cli.json("plan", str(spec), "--config", CONFIG, "--expected")

    expected = document["budget"]["expected"]
    assert expected["known"] is True
    assert expected["runs_read"] == 2
    assert expected["read"] == f"s3://{plane.bucket}/incoming/vision/plan-expected.yaml"
    assert [step["step"] for step in expected["steps"]] == ["prep", "train"]
    for step in expected["steps"]:
        assert step["earlier_jobs"] == 2
        assert 0 < step["median_minutes"] < 1, "the local Batch runs each job for about a second"
        assert step["expected_usd"] is not None
    assert expected["usd"] < document["budget"]["worst_case_usd"]
    assert not {"dynamodb:Scan"} & cli.calls, "read by key, never a scan"

    code, out, err = cli("plan", str(spec), "--config", CONFIG, "--expected")
    assert code == 0, err
    tail = out.split("\nexpected:\n", 1)[1].splitlines()
    assert tail[0].startswith("  `prep`: 1 job × median ")
    assert "of 2 earlier jobs × (2 vCPUs at $0.012/vCPU-hour + 4 GiB at $0.0016/GiB-hour) = about " in tail[0]
    assert tail[2].startswith("  in all: about ")


def test_a_renamed_file_finds_its_earlier_runs_by_the_specs_name(plane: ControlPlane, cli: Cli, tmp_path: Path) -> None:
    body = pipeline_spec("plan-renamed", ["prep"])
    assert drop_and_wait(plane, "incoming/vision/old-name.yaml", body).status == "succeeded"

    document = cli.json(
        "plan", str(EXAMPLES / "specs" / "cpu-report.yaml"), "--config", CONFIG, "--expected", "--as", "nowhere.yaml"
    )
    assert document["budget"]["expected"]["known"] is False, "cpu-report never ran here"

    spec = tmp_path / "plan-renamed.yaml"  # no run was dropped at incoming/vision/plan-renamed.yaml
    spec.write_bytes(body)
    document = cli.json("plan", str(spec), "--config", CONFIG, "--expected")
    expected = document["budget"]["expected"]
    assert expected["read"] == "spec `plan-renamed` among team vision's newest 100 runs"
    assert (expected["known"], expected["runs_read"]) == (True, 1)


def test_a_spec_with_no_earlier_runs_gets_the_worst_case_and_one_line_saying_so(plane: ControlPlane, cli: Cli) -> None:
    code, out, err = cli("plan", str(EXAMPLES / "specs" / "resnet-pipeline.yaml"), "--config", CONFIG, "--expected")

    assert code == 0, err
    assert "\nworst case:\n" in out
    assert out.splitlines()[-1] == (
        "expected: unknown: no earlier runs (spec `resnet-sweep` among team vision's newest 100 runs); "
        "the worst case stands alone"
    )


def test_a_key_whose_runs_never_succeeded_falls_back_to_the_specs_name(
    plane: ControlPlane, cli: Cli, tmp_path: Path
) -> None:
    body = pipeline_spec("plan-fallback", ["prep"])
    refused = body.replace(b"job_definition: trainer", b"job_definition: no-such-definition")
    assert drop_and_wait(plane, "incoming/vision/plan-fallback.yaml", refused).status == "rejected"
    assert drop_and_wait(plane, "incoming/vision/elsewhere.yaml", body).status == "succeeded"

    spec = tmp_path / "plan-fallback.yaml"
    spec.write_bytes(body)
    expected = cli.json("plan", str(spec), "--config", CONFIG, "--expected")["budget"]["expected"]

    assert expected["known"] is True, "the key's only run was rejected: the spec's name found one that ran"
    assert expected["read"] == "spec `plan-fallback` among team vision's newest 100 runs"
