"""Cost in dollars: a job's usage × its queue's prices, a run's jobs summed (recoveries in, reused steps out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from batchdrop.events.contract import Usage
from batchdrop.platform.config import QueuePrice, parse_platform_config
from batchdrop.platform.costs import RunCost, cost_of, money_words, queue_prices, run_cost
from batchdrop.spec.model import Resources
from batchdrop.store.records import JobRecord, SpecSource
from tests.conftest import EXAMPLES

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EXAMPLE = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
ON_DEMAND = EXAMPLE.queues["gpu-on-demand"].price
SPOT = EXAMPLE.queues["gpu-shared"].price


def job(job_id: str = "j1", run_id: str = "r1", **fields: Any) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        run_id=run_id,
        team="vision",
        environment="adhoc",
        spec_name="train",
        step="main",
        job_name=f"train-main-{run_id}",
        queue="gpu-on-demand",
        queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/gpu-on-demand",
        hardware="gpu",
        job_definition="trainer",
        job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
        resources=Resources(vcpus=8, memory_mib=61440, gpus=1),
        submitted_at=T0,
        last_event_at=T0,
        spec_digest="0" * 64,
        source=SpecSource(bucket="jobs", key="incoming/vision/train.yaml"),
        **fields,
    )


def two_hours_of_one_gpu() -> Usage:
    """8 vCPUs, 60 GiB and a GPU for two hours (over every attempt: what tracking sums)."""
    return Usage(vcpu_hours=16, memory_gib_hours=120, gpu_hours=2)


def test_a_jobs_cost_is_its_usage_times_its_queues_prices() -> None:
    ran = job(price=ON_DEMAND, status="SUCCEEDED", usage=two_hours_of_one_gpu())
    cost = cost_of(ran)
    assert cost == pytest.approx(2 * 3.06 + 16 * 0.034 + 120 * 0.0045)
    assert money_words(cost or 0) == "$7.20"


def test_the_same_job_on_spot_costs_less() -> None:
    on_spot = cost_of(job(price=SPOT, usage=two_hours_of_one_gpu()))
    on_demand = cost_of(job(price=ON_DEMAND, usage=two_hours_of_one_gpu()))
    assert on_spot is not None
    assert on_demand is not None
    assert on_spot < on_demand


def test_an_arrays_cost_is_its_childrens_summed_on_the_parent() -> None:
    sweep = job(
        price=QueuePrice(vcpu_hour=0.01, gib_hour=0.001, gpu_hour=1.0),
        array_size=1000,
        child_vcpu_hours=500.0,
        child_memory_gib_hours=2000.0,
        child_gpu_hours=100.0,
    )
    assert cost_of(sweep) == pytest.approx(500 * 0.01 + 2000 * 0.001 + 100 * 1.0)


def test_a_job_on_a_queue_without_prices_has_no_cost() -> None:
    assert cost_of(job(usage=two_hours_of_one_gpu())) is None


def test_a_priced_job_that_used_nothing_cost_nothing() -> None:
    assert cost_of(job(price=ON_DEMAND, status="FAILED")) == 0.0


def test_a_runs_cost_counts_its_recoveries_and_leaves_out_the_steps_it_reused() -> None:
    hour = Usage(vcpu_hours=1.0)
    price = QueuePrice(vcpu_hour=1.0)
    failed = job("j1", price=price, usage=hour, recovered_by="j2")
    recovery = job("j2", price=price, usage=hour, recovers="j1")
    reused = job("j0", run_id="r0", price=price, usage=Usage(vcpu_hours=100.0))  # paid for by run r0
    cost = run_cost("r1", [recovery, reused, failed, recovery])  # a job given twice counts once
    assert cost == RunCost(usd=2.0, priced_jobs=2)
    assert cost.words() == "$2.00"


def test_a_run_with_unpriced_jobs_says_so() -> None:
    priced = job("j1", price=QueuePrice(vcpu_hour=1.0), usage=Usage(vcpu_hours=3.0))
    unpriced = job("j2", usage=Usage(vcpu_hours=3.0))
    assert run_cost("r1", [priced, unpriced]).words() == "$3.00 (and 1 job on queues without prices)"
    assert run_cost("r1", [unpriced]).words() == "unknown (no prices)"
    assert not run_cost("r1", []).known


@pytest.mark.parametrize(
    ("usd", "words"),
    [(12.4, "$12.40"), (1234.5, "$1,234.50"), (0.004, "<$0.01"), (0.0, "$0.00"), (0.01, "$0.01"), (2.999, "$3.00")],
)
def test_money_in_words(usd: float, words: str) -> None:
    assert money_words(usd) == words


def test_queue_prices_are_those_of_priced_queues() -> None:
    prices = queue_prices(EXAMPLE)
    assert set(prices) == set(EXAMPLE.queues)
    assert prices["gpu-on-demand"] == ON_DEMAND
    unpriced = {name: queue.model_copy(update={"price": None}) for name, queue in EXAMPLE.queues.items()}
    assert queue_prices(EXAMPLE.model_copy(update={"queues": unpriced})) == {}
