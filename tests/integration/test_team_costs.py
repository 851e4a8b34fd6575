"""Team costs, counted as jobs end (docs/costs.md): each job's cost is added to its team's month exactly once,
on the emulator over HTTP with real boto3 clients, with faults injected beneath botocore's retries.

The track function is loaded as deployed; its tracker is given the month counter (`TeamCosts`) on the
function's own DynamoDB client, so the proxy sees (and breaks) the counter's calls as it would the
function's."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.state_changes import attempt, in_sqs, state_change

from batchdrop.platform.costs import cost_of
from batchdrop.store.costs import MonthCost, TeamCosts, month_of
from batchdrop.store.records import JobRecord
from batchdrop.track.tracker import Tracker
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.test_track import Submitted, at, lifecycle, submit_spec, table_of

Invoke = Callable[[dict[str, Any]], Any]


def counting(module: ModuleType) -> TeamCosts:
    """The loaded track function, its tracker given the month counter on the function's own client."""
    deployed: Tracker = module.tracker
    costs = TeamCosts(deployed.table.client, deployed.table.table_name)  # type: ignore[attr-defined]
    module.__dict__["tracker"] = Tracker(
        table=deployed.table, config=deployed.config, region=deployed.region, costs=costs
    )
    return costs


@pytest.fixture
def track(local_stack: LocalStack) -> tuple[Invoke, TeamCosts]:
    """The track function, counting costs (its clients through the proxy when `faults` came first)."""
    function = local_stack.stack.functions["TrackFunction"]
    module = load_handler(function)
    costs = counting(module)
    return (lambda event: invoke(function, module, event)), costs


@pytest.fixture
def submit(local_stack: LocalStack) -> tuple[ModuleType, Invoke]:
    function = local_stack.stack.functions["SubmitFunction"]
    module = load_handler(function)
    return module, lambda event: invoke(function, module, event)


def month(costs: TeamCosts, team: str = "vision") -> MonthCost:
    (found,) = costs.months([team], [month_of(at(64))])
    return found


def ended(stack: LocalStack, job: JobRecord) -> JobRecord:
    record = table_of(stack).get_job(job.job_id)
    assert record is not None
    assert record.status in {"SUCCEEDED", "FAILED"}
    return record


def finetune(stack: LocalStack, submit: tuple[ModuleType, Invoke]) -> Submitted:
    module, invoke_submit = submit
    return submit_spec(stack, invoke_submit, module, "gpu-finetune.yaml", "vision")


# ---------------------------------------------------------------- the same end applied twice


@pytest.mark.parametrize("fail", [False, True], ids=["succeeded", "failed"])
def test_the_same_end_applied_twice_is_counted_once(
    local_stack: LocalStack, submit: tuple[ModuleType, Invoke], track: tuple[Invoke, TeamCosts], fail: bool
) -> None:
    invoke_track, costs = track
    submitted = finetune(local_stack, submit)
    events = lifecycle(submitted.batch["main"], fail=fail)
    assert invoke_track(in_sqs(*events)) == {"batchItemFailures": []}
    assert invoke_track(in_sqs(events[-1])) == {"batchItemFailures": []}  # redelivered
    assert invoke_track(in_sqs(events[-1], events[-1])) == {"batchItemFailures": []}  # twice in one batch

    record = ended(local_stack, submitted.jobs["main"])
    usd = cost_of(record)
    assert usd is not None
    assert usd > 0
    kept = month(costs)
    assert kept.total.jobs == 1
    assert kept.total.usd == pytest.approx(usd)
    assert kept.total.gpu_hours == pytest.approx(record.usage.gpu_hours if record.usage else 0)
    assert kept.by["queue"][record.queue].usd == pytest.approx(usd)
    assert kept.by["spec"][record.spec_name].jobs == 1


def test_a_second_instance_applying_the_same_end_adds_nothing(
    local_stack: LocalStack, submit: tuple[ModuleType, Invoke], track: tuple[Invoke, TeamCosts]
) -> None:
    invoke_track, costs = track
    submitted = finetune(local_stack, submit)
    events = lifecycle(submitted.batch["main"])
    function = local_stack.stack.functions["TrackFunction"]
    other = load_handler(function)  # its own memory of what it counted: none
    counting(other)
    assert invoke_track(in_sqs(*events)) == {"batchItemFailures": []}
    assert invoke(function, other, in_sqs(events[-1])) == {"batchItemFailures": []}

    assert month(costs).total.jobs == 1
    assert month(costs).total.usd == pytest.approx(cost_of(ended(local_stack, submitted.jobs["main"])) or 0)


# ---------------------------------------------------------------- faults beneath botocore


@pytest.mark.parametrize("fault", ["fail_after", "drop"])
def test_a_count_applied_then_unanswered_is_not_added_twice(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit: tuple[ModuleType, Invoke],
    track: tuple[Invoke, TeamCosts],
    fault: str,
) -> None:
    invoke_track, costs = track
    submitted = finetune(local_stack, submit)
    job_id = submitted.jobs["main"].job_id
    # DynamoDB applies the count, then answers 500 (or closes the connection): botocore sends it again.
    rule = getattr(faults, fault)("dynamodb", "TransactWriteItems", body_contains=job_id)

    result = invoke_track(in_sqs(*lifecycle(submitted.batch["main"])))

    assert rule.fired == 1
    assert faults.count("dynamodb", "TransactWriteItems") >= 2, "botocore re-sent the count beneath the tracker"
    assert result == {"batchItemFailures": []}, "the copy finds the job counted: nothing left to do"
    kept = month(costs)
    assert kept.total.jobs == 1
    assert kept.total.usd == pytest.approx(cost_of(ended(local_stack, submitted.jobs["main"])) or 0)


def test_an_end_whose_state_update_was_applied_then_answered_500_is_counted_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit: tuple[ModuleType, Invoke],
    track: tuple[Invoke, TeamCosts],
) -> None:
    invoke_track, costs = track
    submitted = finetune(local_stack, submit)
    job_id = submitted.jobs["main"].job_id
    events = lifecycle(submitted.batch["main"])
    assert invoke_track(in_sqs(*events[:-1])) == {"batchItemFailures": []}
    # The end's UpdateItem is applied, then answered 500: botocore's copy fails its condition, so the
    # tracker sees a finished job it did not finish (the path of a redelivered end).
    faults.fail_after("dynamodb", "UpdateItem", body_contains=job_id)

    assert invoke_track(in_sqs(events[-1])) == {"batchItemFailures": []}
    assert invoke_track(in_sqs(events[-1])) == {"batchItemFailures": []}

    assert month(costs).total.jobs == 1
    assert month(costs).total.usd == pytest.approx(cost_of(ended(local_stack, submitted.jobs["main"])) or 0)


def test_a_count_refused_is_retried_with_the_message_and_counted_once(
    faults: FaultProxy,
    local_stack: LocalStack,
    submit: tuple[ModuleType, Invoke],
    track: tuple[Invoke, TeamCosts],
) -> None:
    invoke_track, costs = track
    submitted = finetune(local_stack, submit)
    events = lifecycle(submitted.batch["main"])
    # Every attempt botocore makes is refused: the job has ended, its cost is not counted yet.
    faults.fail_before("dynamodb", "TransactWriteItems", times=None)
    first = invoke_track(in_sqs(*events))
    assert first["batchItemFailures"], "the end's message goes back to the queue"
    assert costs.months(["vision"], [month_of(at(64))]) == []
    faults.clear_rules()

    assert invoke_track(in_sqs(events[-1])) == {"batchItemFailures": []}  # the queue brings it back

    assert month(costs).total.jobs == 1


# ---------------------------------------------------------------- arrays: the parent, children summed, once


def _array_events(submitted: Submitted, size: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    parent = submitted.batch["main"]
    children = [
        {**parent, "jobId": f"{parent['jobId']}:{index}", "arrayProperties": {"index": index}} for index in range(size)
    ]
    child_ends = [
        state_change(
            child,
            "SUCCEEDED",
            at=at(35),
            exit_code=0,
            attempts=[attempt(child, 1, started=at(5), stopped=at(35), exit_code=0)],
        )
        for child in children
    ]
    summary = {"SUCCEEDED": size}
    parent_end = state_change(
        {**parent, "arrayProperties": {"size": size, "statusSummary": summary}}, "SUCCEEDED", at=at(36)
    )
    return child_ends, parent_end


@pytest.mark.parametrize("parent_first", [False, True], ids=["children-first", "parent-first"])
def test_an_array_is_counted_once_with_its_children_summed_whichever_end_comes_last(
    local_stack: LocalStack, submit: tuple[ModuleType, Invoke], track: tuple[Invoke, TeamCosts], parent_first: bool
) -> None:
    invoke_track, costs = track
    module, invoke_submit = submit
    submitted = submit_spec(local_stack, invoke_submit, module, "lr-grid-1000.yaml", "vision")
    child_ends, parent_end = _array_events(submitted, 1000)
    random.Random(5).shuffle(child_ends)
    batches = [child_ends[start : start + 100] for start in range(0, 1000, 100)]
    if parent_first:
        batches[-1] = [parent_end, *batches[-1]]  # its last children come in the same batch, after it
        batches.insert(3, [parent_end])
    else:
        batches.append([parent_end])
    for batch in [*batches, batches[-1]]:  # the last batch delivered twice
        assert invoke_track(in_sqs(*batch)) == {"batchItemFailures": []}

    record = table_of(local_stack).get_job(submitted.jobs["main"].job_id)
    assert record is not None
    kept = month(costs)
    assert kept.total.jobs == 1, "the array, not each child"
    assert kept.total.gpu_hours == pytest.approx(500.0)  # 1,000 children × 1 GPU × 30 minutes
    assert kept.total.usd == pytest.approx(cost_of(record) or 0)
    assert kept.total.usd > 0


def test_the_track_function_tells_the_dashboard_each_teams_dollars(
    local_stack: LocalStack,
    submit: tuple[ModuleType, Invoke],
    track: tuple[Invoke, TeamCosts],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke_track, _ = track
    submitted = finetune(local_stack, submit)
    capsys.readouterr()
    assert invoke_track(in_sqs(*lifecycle(submitted.batch["main"]))) == {"batchItemFailures": []}

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"CostUSD"' in line]
    (metric,) = emitted
    assert metric["team"] == "vision"
    assert metric["CostUSD"] == [pytest.approx(cost_of(ended(local_stack, submitted.jobs["main"])) or 0)]
