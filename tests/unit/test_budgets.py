"""Team budgets checked before submission (docs/budgets.md): a run's worst case in dollars with its
arithmetic, the rejections a team's budget makes, the platform config's budget fields, and what
`batchdrop plan` and `validate` say offline."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batchdrop.errors import ConfigInvalid, SpecRejected
from batchdrop.platform.budgets import duration_words, rate_words, worst_case
from batchdrop.platform.config import PlatformConfig, parse_platform_config
from batchdrop.platform.planning import Plan, check_and_plan
from batchdrop.store.costs import MonthCost, Tally
from batchdrop.store.items import RecordsUnavailable
from batchdrop.store.records import SpecSource
from batchdrop.submit.budgets import BudgetCheck
from batchdrop.submit.submitter import Drop, Submitter
from batchdrop_cli.main import EXIT_INVALID, EXIT_OK, main
from tests.conftest import EXAMPLES
from tests.unit.fakes import FakeBatch, FakeBucket, FixedConfig, MemoryTable

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
CONFIG_TEXT = (EXAMPLES / "platform.yaml").read_text()
GRID = (EXAMPLES / "specs" / "lr-grid-1000.yaml").read_bytes()
NO_TIMEOUT = b"""\
version: 1
name: quick
job_definition: triage
command: [python, quick.py]
resources: {vcpus: 2, memory_mib: 4096}
"""


def config(text: str = CONFIG_TEXT) -> PlatformConfig:
    return parse_platform_config(text.encode())


def with_budget(budget: str, text: str = CONFIG_TEXT) -> PlatformConfig:
    return config(text.replace("budget: {per_run_usd: 10000, monthly_usd: 250000, warn_at: 0.8}", budget))


def plan_of(spec: bytes | str, platform: PlatformConfig, team: str = "vision") -> Plan:
    raw = (EXAMPLES / "specs" / spec).read_bytes() if isinstance(spec, str) else spec
    return check_and_plan(raw, "spec.yaml", team=team, config=platform, run_id="r1")


# ---- the worst case -------------------------------------------------------------------------------------------------


def test_a_sweeps_worst_case_is_every_child_times_its_timeout_resources_prices_and_attempts() -> None:
    worst = worst_case(plan_of("lr-grid-1000.yaml", config()))

    assert worst.usd == pytest.approx(1000 * 1.5 * (1.10 + 4 * 0.012 + 16 * 0.0016) * 2)
    (step,) = worst.steps
    assert step.words() == (
        "`main`: 1,000 children × 90 min × (1 GPU at $1.10/GPU-hour + 4 vCPUs at $0.012/vCPU-hour + "
        "16 GiB at $0.0016/GiB-hour) × 2 attempts = up to $3,520.80"
    )


def test_out_of_memory_recoveries_count_with_their_grown_memory_up_to_the_queues_largest() -> None:
    worst = worst_case(plan_of("vision-production.yaml", config()))

    train, package = worst.steps
    words = [line.words for line in train.lines]
    assert len(words) == 3, "the job and its two recoveries"
    assert "244 GiB" in words[0]
    assert "recovery 1 of 2" in words[1]
    assert "366 GiB" in words[1]
    assert "549 GiB" in words[2]
    assert "× 5 attempts" in words[2]
    assert "24 h" in package.words(), "the platform's default timeout bounds a step that gives none"


def test_a_spot_fallback_counts_one_more_job_at_the_fallback_queues_prices() -> None:
    worst = worst_case(plan_of("gpu-finetune.yaml", config()))

    first, fallback = worst.steps[0].lines
    assert "× 2 attempts" in first.words, "at most `after` attempts on spot"
    assert fallback.words.startswith("`main` on fallback `gpu-on-demand`: 1 job × 8 h × (1 GPU at $3.06/GPU-hour")
    assert fallback.usd == pytest.approx(8 * (3.06 + 8 * 0.034 + 60 * 0.0045))


def test_a_step_without_a_timeout_has_no_worst_case_on_a_team_without_a_budget() -> None:
    platform = config(CONFIG_TEXT.replace("defaults:\n  timeout_minutes: 1440", ""))
    worst = worst_case(plan_of(NO_TIMEOUT, platform, team="forecasting"))

    assert worst.unbounded == ["main"]
    assert worst.steps[0].words() == "`main`: no timeout, so no worst case"


def test_reused_steps_are_left_out_of_a_resumed_runs_worst_case() -> None:
    plan = plan_of("resnet-pipeline.yaml", config())

    assert [step.step for step in worst_case(plan, skip={"prep", "train"}).steps] == ["evaluate"]


def test_durations_and_unit_prices_read_as_people_write_them() -> None:
    assert [duration_words(minutes) for minutes in (45, 60, 90, 480, 1440)] == [
        "45 min",
        "60 min",
        "90 min",
        "8 h",
        "24 h",
    ]
    assert [rate_words(rate) for rate in (1.1, 0.0016, 0.012, 1250.0)] == ["$1.10", "$0.0016", "$0.012", "$1,250.00"]


# ---- the platform config ---------------------------------------------------------------------------------------------


def test_the_platform_default_timeout_goes_only_into_steps_that_give_none() -> None:
    plan = plan_of("resnet-pipeline.yaml", config())

    timeouts = {job.step: job.request["timeout"]["attemptDurationSeconds"] for job in plan.jobs}
    assert timeouts == {"prep": 86400, "train": 240 * 60, "evaluate": 86400}


@pytest.mark.parametrize("warn_at", ["0", "1.5", "-0.2"])
def test_warn_at_outside_zero_to_one_is_refused_when_the_config_loads(warn_at: str) -> None:
    with pytest.raises(ConfigInvalid) as refused:
        with_budget(f"budget: {{monthly_usd: 1000, warn_at: {warn_at}}}")

    assert [problem.path for problem in refused.value.problems] == ["teams.vision.budget.warn_at"]


def test_a_budget_with_no_limit_is_refused() -> None:
    with pytest.raises(ConfigInvalid) as refused:
        with_budget("budget: {warn_at: 0.5}")

    assert [problem.code for problem in refused.value.problems] == ["empty_budget"]


def test_a_budgeted_team_that_can_reach_a_queue_without_prices_is_refused() -> None:
    text = CONFIG_TEXT.replace("    price: {vcpu_hour: 0.012, gib_hour: 0.0016}   # spot, m6i/c6i-class\n", "")
    with pytest.raises(ConfigInvalid) as refused:
        config(text)

    (problem,) = refused.value.problems
    assert problem.code == "budget_without_prices"
    assert "`cpu-shared`" in problem.message


# ---- timeouts required -----------------------------------------------------------------------------------------------


def test_a_step_without_timeout_on_a_team_that_requires_one_is_rejected() -> None:
    text = CONFIG_TEXT.replace("defaults:\n  timeout_minutes: 1440", "").replace(
        "    share_identifier: forecast\n", "    share_identifier: forecast\n    require_timeout: true\n"
    )
    with pytest.raises(SpecRejected) as rejected:
        plan_of(NO_TIMEOUT, config(text), team="forecasting")

    (problem,) = rejected.value.problems
    assert problem.code == "timeout_required"
    assert "team `forecasting` requires one" in problem.message
    assert "timeout_minutes" in problem.message


def test_a_budgeted_teams_step_without_timeout_is_rejected_when_there_is_no_default() -> None:
    text = CONFIG_TEXT.replace("defaults:\n  timeout_minutes: 1440", "")
    with pytest.raises(SpecRejected) as rejected:
        plan_of("resnet-pipeline.yaml", config(text))

    assert [(problem.path, problem.code) for problem in rejected.value.problems] == [
        ("steps[0]", "timeout_required"),
        ("steps[2]", "timeout_required"),
    ]


# ---- at submission ---------------------------------------------------------------------------------------------------


class Months:
    """The teams' month-to-date costs, as `TeamCosts.months` reads them."""

    def __init__(self, spent: dict[str, float]) -> None:
        self.spent = spent
        self.reads: list[tuple[list[str], list[str]]] = []
        self.unreadable = False

    def months(self, teams: Iterable[str], months: Iterable[str]) -> list[MonthCost]:
        if self.unreadable:
            raise RecordsUnavailable("DynamoDB throttled the read")
        teams, months = list(teams), list(months)
        self.reads.append((teams, months))
        return [
            MonthCost(team=team, month=month, total=Tally(usd=self.spent[team], jobs=3))
            for team in teams
            for month in months
            if team in self.spent
        ]


def submitting(platform: PlatformConfig, months: Months | None = None) -> tuple[Submitter, MemoryTable, FakeBatch]:
    table, batch = MemoryTable(), FakeBatch()
    bucket = FakeBucket({"incoming/vision/lr-grid.yaml": GRID})
    submitter = Submitter(
        table=table, batch=batch, bucket=bucket, config=FixedConfig(platform), clock=lambda: T0, month_costs=months
    )
    return submitter, table, batch


def drop() -> Drop:
    return Drop(source=SpecSource(bucket="jobs", key="incoming/vision/lr-grid.yaml", version_id="v1"), message_id="m1")


def test_a_run_over_its_per_run_budget_is_rejected_with_the_arithmetic_and_submits_nothing() -> None:
    submitter, table, batch = submitting(with_budget("budget: {per_run_usd: 500}"))

    outcome = submitter.submit(drop())
    submitter.flush()

    assert outcome.kind == "rejected"
    run = table.runs[str(outcome.run_id)]
    assert run.status == "rejected"
    assert run.receipt_key is not None, "an ordinary rejection: its receipt and run.rejected are told"
    (problem,) = run.problems
    assert problem.code == "over_run_budget"
    assert problem.message.startswith("this run may cost up to $3,520.80 (`main`: 1,000 children × 90 min × ")
    assert "team `vision` allows $500.00 per run: lower array_size or timeout_minutes" in problem.message
    assert batch.submitted == []


def test_a_run_over_what_is_left_of_the_month_is_rejected_with_the_numbers() -> None:
    months = Months({"vision": 18_000.0})
    submitter, table, batch = submitting(with_budget("budget: {monthly_usd: 20000}"), months)

    outcome = submitter.submit(drop())
    submitter.flush()

    (problem,) = table.runs[str(outcome.run_id)].problems
    assert problem.code == "over_monthly_budget"
    assert problem.message == (
        "this run may cost up to $3,520.80; team `vision` has spent $18,000.00 of its $20,000.00 for 2026-11, "
        "so $2,000.00 is left: lower array_size or timeout_minutes, wait for next month, or ask the platform team"
    )
    assert months.reads == [(["vision"], ["2026-11"])], "one read of the team's month per drop"
    assert batch.submitted == []


def test_a_run_within_the_month_and_per_run_budgets_is_submitted() -> None:
    months = Months({"vision": 1_000.0})
    submitter, _, batch = submitting(with_budget("budget: {per_run_usd: 5000, monthly_usd: 20000}"), months)

    assert submitter.submit(drop()).kind == "submitted"
    assert len(batch.submitted) == 1


def test_a_team_without_a_budget_has_no_month_read() -> None:
    months = Months({})
    text = CONFIG_TEXT.replace("    budget: {per_run_usd: 10000, monthly_usd: 250000, warn_at: 0.8}\n", "")
    submitter, _, _ = submitting(config(text), months)

    assert submitter.submit(drop()).kind == "submitted"
    assert months.reads == []


# ---- offline: plan and validate --------------------------------------------------------------------------------------


def test_plan_prints_each_steps_worst_case_the_total_and_says_what_it_cannot_know_offline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", str(EXAMPLES / "specs" / "resnet-pipeline.yaml"), "--config", str(EXAMPLES / "platform.yaml")])
    out = capsys.readouterr().out

    assert code == EXIT_OK
    tail = out.split("\nworst case:\n", 1)[1].splitlines()
    assert tail[0].startswith("  `prep`: 1 job × 24 h × (8 vCPUs at $0.012/vCPU-hour")
    assert tail[3] == "  in all: up to $66.43"
    assert tail[4] == "  team vision allows $10,000.00 per run"
    assert "not known offline" in tail[5]
    assert tail[6].startswith("expected: unknown offline")


def test_validate_rejects_a_spec_over_its_teams_per_run_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = tmp_path / "platform.yaml"
    platform.write_text(CONFIG_TEXT.replace("per_run_usd: 10000", "per_run_usd: 500"))

    code = main(["validate", "--config", str(platform), "--json", str(EXAMPLES / "specs" / "lr-grid-1000.yaml")])
    out = capsys.readouterr().out

    assert code == EXIT_INVALID
    assert '"code": "over_run_budget"' in out


def test_a_reclaimed_drop_is_not_checked_against_the_month_again() -> None:
    """Its first attempt checked the month and may have submitted jobs since: rejecting it now, on a month
    that moved, would strand them."""
    months = Months({"vision": 19_999.0})
    platform = with_budget("budget: {per_run_usd: 5000, monthly_usd: 20000}")
    check = BudgetCheck(months=months, clock=lambda: T0)
    plan = plan_of("lr-grid-1000.yaml", platform)

    assert check.problems(plan, platform.teams["vision"], monthly=False) == []
    assert months.reads == []
    assert [problem.code for problem in check.problems(plan, platform.teams["vision"])] == ["over_monthly_budget"]


def test_a_retry_of_a_drop_whose_first_attempt_failed_before_submitting_is_checked_against_the_month() -> None:
    months = Months({"vision": 19_999.0})
    platform = with_budget("budget: {per_run_usd: 5000, monthly_usd: 20000}")
    submitter, table, batch = submitting(platform, months)
    months.unreadable = True
    with pytest.raises(RecordsUnavailable):
        submitter.submit(drop())  # its claim stays `submitting`; SQS delivers the message again

    months.unreadable = False
    submitter.clock = lambda: T0 + timedelta(seconds=720)  # SQS brings it back after its visibility timeout
    outcome = submitter.submit(drop())
    submitter.flush()

    assert outcome.kind == "rejected", "nothing was submitted: its retry is a first check of the month"
    assert [problem.code for problem in table.runs[str(outcome.run_id)].problems] == ["over_monthly_budget"]
    assert batch.submitted == []


def test_a_retry_of_a_drop_whose_first_attempt_submitted_is_not_refused_by_the_month_its_jobs_moved() -> None:
    months = Months({"vision": 1_000.0})
    platform = with_budget("budget: {per_run_usd: 5000, monthly_usd: 20000}")
    first, table, batch = submitting(platform, months)
    assert first.submit(drop()).kind == "submitted"  # and the instance dies before writing its records
    months.spent["vision"] = 19_999.0  # its own job ran meanwhile, and others

    retry = Submitter(
        table=table,
        batch=batch,
        bucket=first.bucket,
        config=first.config,
        clock=lambda: T0 + timedelta(seconds=720),  # SQS brings it back after its visibility timeout
        month_costs=months,
    )
    outcome = retry.submit(drop())
    retry.flush()

    assert outcome.kind == "submitted"
    assert len(batch.submitted) == 1, "its job adopted by name, not submitted again"
