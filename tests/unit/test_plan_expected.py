"""The expected case `batchdrop plan --expected` prints (docs/budgets.md): each step's median run time in the
spec's earlier runs, read from their records, × this plan's resources and prices; none without earlier
runs, and offline the plan says so and shows the worst case alone."""

from __future__ import annotations

import json

import pytest

from batchdrop.platform.budgets import expected_case, run_time_words
from batchdrop.platform.config import PlatformConfig, parse_platform_config
from batchdrop.platform.costs import held_usage, usage_cost
from batchdrop.platform.planning import Plan, check_and_plan
from batchdrop.spec.model import Resources
from batchdrop.store.queries import EarlierRuns, run_minutes, step_run_minutes
from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef
from batchdrop_cli import expected as expected_module
from batchdrop_cli.expected import OFFLINE, Expected, expected_json, expected_lines
from batchdrop_cli.main import EXIT_OK, main
from batchdrop_cli.operations import OperationFailed
from tests.conftest import EXAMPLES
from tests.recordkit import job_record, run_of_jobs

CONFIG = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())


def plan_of(spec: str, platform: PlatformConfig = CONFIG) -> Plan:
    raw = (EXAMPLES / "specs" / spec).read_bytes()
    return check_and_plan(raw, "spec.yaml", team="vision", config=platform, run_id="r1")


def ran(job: JobRecord, minutes: float, *, run_id: str = "r1", status: str = "SUCCEEDED") -> JobRecord:
    """The job ended in `status` after `minutes` of running (per child, for an array)."""
    count = job.array_size or 1
    usage = held_usage(job.resources, minutes / 60 * count)
    field = {"child_memory_gib_hours": usage.memory_gib_hours} if job.array_size else {"usage": usage}
    return job.model_copy(update={"status": status, "run_id": run_id, **field})


def earlier_run(run_id: str, *jobs: JobRecord) -> RunRecord:
    return run_of_jobs(list(jobs)).model_copy(update={"run_id": run_id})


# ---- each step's run times, from the records of earlier runs -------------------------------------------------------


def test_a_steps_run_times_are_its_succeeded_jobs_per_child_and_leave_out_failed_and_reused_ones() -> None:
    prep = [
        ran(job_record(f"p{index}", "prep"), minutes, run_id=f"r{index}") for index, minutes in enumerate([10, 30, 20])
    ]
    train = ran(job_record("t0", "train", array_size=4), 45, run_id="r0")
    failed = ran(job_record("t1", "train", array_size=4), 5, run_id="r1", status="FAILED")
    runs = [earlier_run("r0", prep[0], train), earlier_run("r1", prep[1], failed), earlier_run("r2", prep[2])]
    reusing = earlier_run("r3", prep[2]).model_copy(
        update={"jobs": [SubmittedJobRef.of(prep[2], []).model_copy(update={"reused_from": "r2"})]}
    )
    jobs = {job.job_id: job for job in [*prep, train, failed]}

    minutes = step_run_minutes([*runs, reusing], jobs)

    assert sorted(minutes["prep"]) == pytest.approx([10, 20, 30]), "r3 reused r2's prep: counted once, in r2"
    assert minutes["train"] == [pytest.approx(45)], "per child; the failed array is left out"


def test_a_job_batchdrop_knows_no_usage_of_has_no_run_time() -> None:
    assert run_minutes(job_record("a", "prep").model_copy(update={"status": "SUCCEEDED"})) is None
    assert run_minutes(ran(job_record("a", "prep"), 12)) == pytest.approx(12)


# ---- the expected case -----------------------------------------------------------------------------------------------


def test_the_expected_case_is_the_median_run_time_times_the_plans_resources_and_prices() -> None:
    plan = plan_of("lr-grid-1000.yaml")  # 1,000 children, 1 GPU + 4 vCPUs + 16 GiB on gpu-shared

    expected = expected_case(plan, {"main": [30.0, 10.0, 20.0, 600.0]})

    (step,) = expected.steps
    hourly = usage_cost(held_usage(Resources(vcpus=4, memory_mib=16384, gpus=1), 1.0), plan.prices["gpu-shared"])
    assert (step.samples, step.minutes) == (4, 25.0), "the median: one slow run does not drag it"
    assert step.usd == pytest.approx(1000 * 25 / 60 * hourly)
    assert expected.usd == step.usd
    assert expected.known
    assert expected.unknown == []
    assert step.words.startswith("`main`: 1,000 children × median 25 min of 4 earlier jobs × (1 GPU at $1.10/GPU-hour")
    assert step.words.endswith(f"= about ${step.usd:,.2f}")


def test_a_step_that_never_ran_has_no_expected_case_and_the_others_still_do() -> None:
    plan = plan_of("resnet-pipeline.yaml")

    expected = expected_case(plan, {"prep": [12.0]})

    assert expected.known
    assert expected.unknown == ["train", "evaluate"]
    assert [step.words for step in expected.steps][1] == "`train`: no earlier run of this step"
    assert expected.usd == pytest.approx(expected.steps[0].usd or 0)


def test_no_earlier_runs_say_so_in_one_line_and_the_worst_case_stands_alone() -> None:
    plan = plan_of("resnet-pipeline.yaml")
    earlier = EarlierRuns(read="s3://jobs/incoming/vision/resnet-pipeline.yaml", runs=[], run_minutes={})

    expected = expected_case(plan, earlier.run_minutes)

    assert not expected.known
    (line,) = expected_lines(Expected(expected, earlier))
    assert line == (
        "expected: unknown: no earlier runs (s3://jobs/incoming/vision/resnet-pipeline.yaml); "
        "the worst case stands alone"
    )
    shown = expected_json(Expected(expected, earlier))
    assert (shown["known"], shown["usd"], shown["runs_read"]) == (False, None, 0)


def test_earlier_runs_none_of_whose_steps_succeeded_give_no_expected_case() -> None:
    plan = plan_of("resnet-pipeline.yaml")
    runs = [run_of_jobs([ran(job_record("a", "prep"), 3, status="FAILED")])]
    earlier = EarlierRuns(read="s3://jobs/incoming/vision/p.yaml", runs=runs, run_minutes={})

    (line,) = expected_lines(Expected(expected_case(plan, earlier.run_minutes), earlier))
    assert line == (
        "expected: unknown: none of these steps succeeded in 1 earlier run (s3://jobs/incoming/vision/p.yaml); "
        "the worst case stands alone"
    )


def test_the_expected_case_as_plan_json_shows_it() -> None:
    plan = plan_of("resnet-pipeline.yaml")
    runs = [run_of_jobs([job_record("a", "prep")])]
    earlier = EarlierRuns(read="s3://jobs/incoming/vision/p.yaml", runs=runs, run_minutes={"prep": [12.0, 14.0]})

    shown = expected_json(Expected(expected_case(plan, earlier.run_minutes), earlier))

    assert shown["known"] is True
    assert shown["runs_read"] == 1
    assert shown["steps"][0] | {"words": ""} == {
        "step": "prep",
        "earlier_jobs": 2,
        "median_minutes": 13.0,
        "expected_usd": round(shown["usd"], 2),
        "words": "",
    }
    assert shown["steps"][1]["earlier_jobs"] == 0
    assert "train, evaluate never ran before, left out" in shown["words"]


@pytest.mark.parametrize(("minutes", "words"), [(0.4, "24 s"), (42.2, "42 min"), (150, "2.5 h")])
def test_run_times_read_as_people_say_them(minutes: float, words: str) -> None:
    assert run_time_words(minutes) == words


def test_offline_plan_says_the_expected_case_needs_the_stack(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(EXAMPLES / "platform.yaml")
    spec = str(EXAMPLES / "specs" / "resnet-pipeline.yaml")

    assert main(["plan", spec, "--config", config]) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == f"expected: {OFFLINE}"
    assert main(["plan", spec, "--config", config, "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)["budget"]["expected"]
    assert shown == {"known": False, "usd": None, "runs_read": 0, "read": None, "steps": [], "words": OFFLINE}


def test_a_stack_that_cannot_be_read_costs_the_plan_its_expected_case_not_its_worst_case(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_stack(_: object) -> None:
        raise OperationFailed("stack 'batchdrop-dev' not found: deploy it, or pass --stack")

    monkeypatch.setattr(expected_module, "Stack", no_stack)
    spec = str(EXAMPLES / "specs" / "resnet-pipeline.yaml")

    assert main(["plan", spec, "--config", str(EXAMPLES / "platform.yaml"), "--expected"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "  in all: up to $66.43" in out
    assert out.splitlines()[-1] == (
        "expected: unknown: the stack's earlier runs could not be read "
        "(stack 'batchdrop-dev' not found: deploy it, or pass --stack)"
    )
