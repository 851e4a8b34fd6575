"""The demo's options: a spec it does not have is a usage error before anything starts. And its
rerun of the failed pipeline: made only when that pipeline is dropped, and as expected only when it
reused and submitted the steps the scenario names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from batchdrop_local.batch_fates import Scenario
from batchdrop_local.demo import SCENARIO, main
from batchdrop_local.demo_drops import Snapshot, plan_drops, plan_reruns

from batchdrop.store.records import RunRecord, SpecSource, SubmittedJobRef

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
EARLIER = "a" * 20
"""The failed run the rerun reran."""
EXPECTED = "succeeded; reused prep, train; submitted evaluate"


def test_an_unknown_only_is_a_usage_error_naming_the_demos_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--only", "nope.yaml", "--only", "typo-in-gpus.yaml", "--log", str(tmp_path / "demo.log")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "no such demo spec: nope.yaml" in err
    assert "typo-in-gpus.yaml" in err, "the demo's specs are listed"
    assert not (tmp_path / "demo.log").exists(), "nothing started"


def test_the_failed_pipeline_is_rerun_only_when_it_is_dropped() -> None:
    scenario = Scenario.load(SCENARIO)
    [rerun] = plan_reruns(scenario, plan_drops(scenario))
    assert (rerun.name, rerun.team, rerun.key, rerun.expected) == (
        "resnet-pipeline.yaml (rerun)",
        "vision",
        "",
        "succeeded",
    )
    assert rerun.expected_outcome() == "succeeded; reused prep, train; submitted evaluate"
    assert plan_reruns(scenario, plan_drops(scenario, ["cpu-report.yaml"])) == []


def rerun_run(steps: dict[str, str | None], *, status: str = "succeeded", resumes: str = EARLIER) -> RunRecord:
    """A rerun's record: each step reused from the run named (or submitted, for None)."""
    return RunRecord(
        run_id="b" * 20,
        team="vision",
        status=status,  # type: ignore[arg-type]
        source=SpecSource(bucket="jobs", key="incoming/vision/resnet-pipeline.rerun-20261130T040000.json"),
        received_at=NOW,
        claim_owner="m",
        claimed_at=NOW,
        resumes=resumes,
        jobs=[
            SubmittedJobRef(
                step=step, job_id=f"job-{step}", job_name=step, queue="cpu", hardware="cpu", reused_from=run
            )
            for step, run in steps.items()
        ],
    )


@pytest.mark.parametrize(
    ("run", "ended", "as_expected"),
    [
        (rerun_run({"prep": EARLIER, "train": EARLIER, "evaluate": None}), EXPECTED, True),
        # every step submitted again: it succeeded, but reused nothing
        (
            rerun_run({"prep": None, "train": None, "evaluate": None}),
            "succeeded; reused nothing; submitted prep, train, evaluate",
            False,
        ),
        (
            rerun_run({"prep": EARLIER, "train": EARLIER, "evaluate": None}, status="failed"),
            "failed; reused prep, train; submitted evaluate",
            False,
        ),
        # the same steps, but of another run than the one it reran
        (rerun_run({"prep": "c" * 20, "train": "c" * 20, "evaluate": None}, resumes="c" * 20), EXPECTED, False),
        (None, "never seen", False),
    ],
)
def test_a_rerun_is_as_expected_only_when_it_reused_and_submitted_the_steps_named(
    run: RunRecord | None, ended: str, as_expected: bool
) -> None:
    scenario = Scenario.load(SCENARIO)
    [rerun] = plan_reruns(scenario, plan_drops(scenario, ["resnet-pipeline.yaml"]))
    rerun.rerun_of = EARLIER
    assert (rerun.outcome(run), rerun.as_expected(run)) == (ended, as_expected)


def test_a_rerun_that_could_not_be_made_says_why_and_is_settled() -> None:
    scenario = Scenario.load(SCENARIO)
    [rerun] = plan_reruns(scenario, plan_drops(scenario, ["resnet-pipeline.yaml"]))
    rerun.problem = "batchdrop rerun x: run x is running: rerun it once it has ended"
    assert rerun.outcome(None) == rerun.problem
    assert Snapshot().settled([rerun])
    assert not Snapshot().as_expected([rerun])
