"""Team budgets on the emulator, with the functions loaded as deployed (docs/budgets.md): a run over its
team's per-run budget is an ordinary rejected run whose receipt carries the arithmetic; a run over what is
left of the month is rejected with the numbers; and a team's month crossing its warning level and its
budget is told once each (`team.budget`), even when the crossing is applied again."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import in_sqs

from batchdrop.events.contract import Usage
from batchdrop.platform.config import BudgetConfig
from batchdrop.store.costs import JobCost, TeamCosts, cost_key, month_of
from batchdrop.store.items import serialize
from batchdrop.store.records import SpecSource
from batchdrop.submit.submitter import Submitter
from batchdrop.track.tracker import Tracker
from tests.conftest import EXAMPLES
from tests.integration.conftest import LocalStack
from tests.integration.test_track import at, lifecycle, submit_spec, table_of

Invoke = Callable[[dict[str, Any]], Any]
GRID = (EXAMPLES / "specs" / "lr-grid-1000.yaml").read_bytes()


def set_config(stack: LocalStack, edit: Callable[[str], str]) -> None:
    s3 = stack.client("s3")
    text = s3.get_object(Bucket=stack.bucket, Key="config/platform.yaml")["Body"].read().decode()
    s3.put_object(Bucket=stack.bucket, Key="config/platform.yaml", Body=edit(text).encode())


@pytest.fixture
def submit(local_stack: LocalStack) -> tuple[ModuleType, Invoke]:
    function = local_stack.stack.functions["SubmitFunction"]
    module = load_handler(function)
    return module, lambda event: invoke(function, module, event)


def rejected_receipt(stack: LocalStack, submit: tuple[ModuleType, Invoke], key: str) -> dict[str, Any]:
    module, invoke_submit = submit
    upload = stack.upload(key, GRID)
    assert invoke_submit(stack.s3_event(upload)) == {"batchItemFailures": []}
    run = table_of(stack).get_run(
        module.Submitter.run_id(SpecSource(bucket=upload.bucket, key=upload.key, version_id=upload.version_id))
    )
    assert run is not None
    assert run.status == "rejected"
    assert run.receipt_key is not None
    return stack.receipt(run.receipt_key)


def test_a_run_over_its_per_run_budget_is_rejected_with_the_arithmetic_in_its_receipt(
    local_stack: LocalStack, submit: tuple[ModuleType, Invoke]
) -> None:
    set_config(local_stack, lambda text: text.replace("per_run_usd: 10000", "per_run_usd: 500"))

    receipt = rejected_receipt(local_stack, submit, "incoming/vision/lr-grid.yaml")

    (problem,) = receipt["problems"]
    assert problem["code"] == "over_run_budget"
    assert problem["message"].startswith("this run may cost up to $3,520.80 (`main`: 1,000 children × 90 min × ")
    assert "team `vision` allows $500.00 per run" in problem["message"]
    assert local_stack.batch_jobs() == [], "nothing was submitted"
    (told,) = [event["body"] for event in local_stack.published_events() if event["body"]["type"] == "run.rejected"]
    assert told["problems"][0]["code"] == "over_run_budget"


def test_a_run_over_what_is_left_of_the_month_is_rejected_with_the_numbers(
    local_stack: LocalStack, submit: tuple[ModuleType, Invoke]
) -> None:
    module, _ = submit
    deployed: Submitter = module.submitter
    claims = deployed.table
    ledger = TeamCosts(claims.client, claims.table_name)  # type: ignore[attr-defined]
    module.__dict__["submitter"] = Submitter(
        table=claims, batch=deployed.batch, bucket=deployed.bucket, config=deployed.config, month_costs=ledger
    )
    set_config(local_stack, lambda text: text.replace("monthly_usd: 250000", "monthly_usd: 5000"))
    month = month_of(deployed.clock())
    item = {"kind": "team_month", "team": "vision", "month": month, "usd": 2000.0, "jobs": 40}
    ledger.client.put_item(TableName=ledger.table_name, Item=cost_key("vision", month) | serialize(item))

    receipt = rejected_receipt(local_stack, submit, "incoming/vision/lr-grid-month.yaml")

    (problem,) = receipt["problems"]
    assert problem["code"] == "over_monthly_budget"
    assert f"team `vision` has spent $2,000.00 of its $5,000.00 for {month}, so $3,000.00 is left" in problem["message"]


# ---------------------------------------------------------------- team.budget, once each


@pytest.fixture
def budgets() -> dict[str, BudgetConfig]:
    return {}


@pytest.fixture
def track(local_stack: LocalStack, budgets: dict[str, BudgetConfig]) -> tuple[Invoke, TeamCosts]:
    """The track function, counting costs with the teams' budgets (as `budgets` says at each count)."""
    function = local_stack.stack.functions["TrackFunction"]
    module = load_handler(function)
    return (lambda event: invoke(function, module, event)), counting(module, budgets)


def counting(module: ModuleType, budgets: dict[str, BudgetConfig]) -> TeamCosts:
    deployed: Tracker = module.tracker
    costs = TeamCosts(deployed.table.client, deployed.table.table_name, budgets=budgets.get)  # type: ignore[attr-defined]
    tracker = Tracker(table=deployed.table, config=deployed.config, region=deployed.region, costs=costs)
    assert tracker.costs is not None
    tracker.costs.clock = lambda: at(64)  # the month the tests' jobs end in is this month, whenever they run
    module.__dict__["tracker"] = tracker
    return costs


def team_budget_events(stack: LocalStack) -> list[dict[str, Any]]:
    """The `team.budget` events the topic delivered since the last look (the outbox told by the publish
    function, `LocalStack.tell`), one per `event_id` (delivery is at least once: subscribers drop
    duplicates by it)."""
    told = [event for event in stack.published_events() if event["body"]["type"] == "team.budget"]
    return list({event["body"]["event_id"]: event for event in told}.values())


def test_crossing_the_warning_level_is_told_once_and_crossing_the_budget_once(
    local_stack: LocalStack,
    submit: tuple[ModuleType, Invoke],
    track: tuple[Invoke, TeamCosts],
    budgets: dict[str, BudgetConfig],
) -> None:
    invoke_track, costs = track
    module, invoke_submit = submit
    first = submit_spec(local_stack, invoke_submit, module, "gpu-finetune.yaml", "vision")
    events = lifecycle(first.batch["main"])
    assert invoke_track(in_sqs(*events)) == {"batchItemFailures": []}
    (kept,) = costs.months(["vision"], [month_of(at(64))])
    spent = kept.total.usd
    assert spent > 0
    assert team_budget_events(local_stack) == [], "no budget yet: nothing to cross"

    # the budget as it is now puts the month past its warning level (80%) but within the budget
    budgets["vision"] = BudgetConfig(monthly_usd=spent * 1.1, warn_at=0.8)
    function = local_stack.stack.functions["TrackFunction"]
    for _ in range(2):  # the same end applied again, twice, by instances that have not counted it
        other = load_handler(function)
        counting(other, budgets)
        assert invoke(function, other, in_sqs(events[-1])) == {"batchItemFailures": []}

    (warned,) = team_budget_events(local_stack)
    body = warned["body"]
    assert (body["status"], body["team"], body["month"]) == ("warning", "vision", month_of(at(64)))
    assert body["spent_usd"] == pytest.approx(spent, abs=1e-4)
    assert body["monthly_usd"] == pytest.approx(spent * 1.1)
    assert body["run_id"] == first.run.run_id
    assert warned["attributes"]["type"] == "team.budget"

    again = JobCost.of(table_of(local_stack).get_job(first.jobs["main"].job_id))  # type: ignore[arg-type]
    assert costs.mark_crossings(again) == [], "marked already: nothing new"
    assert team_budget_events(local_stack) == []

    second = submit_spec(local_stack, invoke_submit, module, "gpu-finetune.yaml", "vision")
    assert invoke_track(in_sqs(*lifecycle(second.batch["main"]))) == {"batchItemFailures": []}

    (exceeded,) = team_budget_events(local_stack)
    assert exceeded["body"]["status"] == "exceeded"
    assert exceeded["body"]["run_id"] == second.run.run_id


# ---------------------------------------------------------------- the month as it stands: a read, not a write


def updates_counted(client: Any) -> list[str]:
    """Every UpdateItem this client makes from now on (its table's name), as botocore sends it."""
    made: list[str] = []
    client.meta.events.register("before-call.dynamodb.UpdateItem", lambda params, **_: made.append("UpdateItem"))
    return made


def month_item(costs: TeamCosts, month: str, usd: float, **markers: Any) -> None:
    item = {"kind": "team_month", "team": "vision", "month": month, "usd": usd, "jobs": 3} | markers
    costs.client.put_item(TableName=costs.table_name, Item=cost_key("vision", month) | serialize(item))


def ended_cost(month: str) -> JobCost:
    return JobCost(
        job_id="job-1",
        team="vision",
        month=month,
        queue="gpu-shared",
        spec_name="finetune",
        usage=Usage(gpu_hours=1.0),
        usd=2.0,
        run_id="run-1",
        source_uri="s3://jobs/incoming/vision/finetune.yaml",
    )


def test_a_month_past_its_warning_level_costs_each_ended_job_a_read_and_no_write(local_stack: LocalStack) -> None:
    table = table_of(local_stack)
    budget = BudgetConfig(monthly_usd=100.0, warn_at=0.8)
    costs = TeamCosts(local_stack.client("dynamodb"), table.table_name, budgets=lambda team: budget)
    month = month_of(at(64))
    month_item(costs, month, 90.0, budget_warned={"at": at(60).isoformat()}, budget_warned_usd=81.0)
    updates = updates_counted(costs.client)

    for _ in range(3):
        standing = costs.standing(ended_cost(month))
        assert (standing.usd, standing.monthly_usd, standing.crossings) == (90.0, 100.0, ())
    assert updates == [], "warned before, budget not reached: nothing written"

    month_item(costs, month, 100.0, budget_warned={"at": at(60).isoformat()}, budget_warned_usd=81.0)
    assert costs.standing(ended_cost(month)).crossings == ("exceeded",)
    assert costs.standing(ended_cost(month)).crossings == (), "marked: the next end writes nothing"
    assert updates == ["UpdateItem"]


def test_two_instances_that_read_the_same_crossing_at_once_mark_it_once(local_stack: LocalStack) -> None:
    table = table_of(local_stack)
    budget = BudgetConfig(monthly_usd=100.0, warn_at=0.8)
    first = TeamCosts(local_stack.client("dynamodb"), table.table_name, budgets=lambda team: budget)
    second = TeamCosts(local_stack.client("dynamodb"), table.table_name, budgets=lambda team: budget)
    month = month_of(at(64))
    month_item(first, month, 85.0)
    marked_by_second: list[tuple[str, ...]] = []
    hooked: list[bool] = []

    def second_marks_in_between(**_: Any) -> None:  # the first has read the month unmarked, and not written yet
        if not hooked:  # once (the two may share a client: the second's own write comes here too)
            hooked.append(True)
            marked_by_second.append(second.standing(ended_cost(month)).crossings)

    first.client.meta.events.register("before-call.dynamodb.UpdateItem", second_marks_in_between)
    assert first.standing(ended_cost(month)).crossings == (), "refused: the second marked it first"
    assert marked_by_second == [("warning",)]
    kept = first.client.get_item(TableName=table.table_name, Key=cost_key("vision", month))["Item"]
    assert "budget_warned" in kept


def test_the_track_function_tells_the_dashboard_each_teams_month_against_its_budget(
    local_stack: LocalStack,
    submit: tuple[ModuleType, Invoke],
    track: tuple[Invoke, TeamCosts],
    budgets: dict[str, BudgetConfig],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke_track, costs = track
    module, invoke_submit = submit
    budgets["vision"] = BudgetConfig(monthly_usd=1000.0)
    submitted = submit_spec(local_stack, invoke_submit, module, "gpu-finetune.yaml", "vision")
    events = lifecycle(submitted.batch["main"])
    capsys.readouterr()
    assert invoke_track(in_sqs(*events)) == {"batchItemFailures": []}

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (spent,) = [line for line in lines if "TeamMonthToDateUSD" in line]
    (budget,) = [line for line in lines if "TeamMonthlyBudgetUSD" in line]
    (kept,) = costs.months(["vision"], [month_of(at(64))])
    assert spent["team"] == budget["team"] == "vision"
    assert spent["TeamMonthToDateUSD"] == [pytest.approx(kept.total.usd)]
    assert kept.total.usd > 0
    assert budget["TeamMonthlyBudgetUSD"] == [1000.0]
