"""A job's cost in dollars on its `job.status` event: told once it has ended, on a queue with prices."""

from __future__ import annotations

import json

import pytest

from batchdrop.events.contract import EVENT_ADAPTER, JobStatusChanged, Usage
from batchdrop.platform.config import QueuePrice
from tests.unit.test_telling import job, moved, tell_jobs, teller

GPU_ON_DEMAND = QueuePrice(vcpu_hour=0.034, gib_hour=0.0045, gpu_hour=3.06)


def status_events(*events: object) -> list[JobStatusChanged]:
    return [event for event in events if isinstance(event, JobStatusChanged)]


def test_an_ended_job_on_a_priced_queue_tells_its_cost() -> None:
    before, after = moved(
        job(price=GPU_ON_DEMAND),
        "SUCCEEDED",
        attempt=1,
        usage=Usage(vcpu_hours=16, memory_gib_hours=120, gpu_hours=2),
    )
    [told] = status_events(*tell_jobs(teller(), before, after))
    assert told.cost_usd == pytest.approx(7.204)
    body = json.loads(told.body())
    assert body["cost_usd"] == pytest.approx(7.204)
    assert EVENT_ADAPTER.validate_json(told.body()) == told


def test_a_failed_array_tells_its_childrens_cost() -> None:
    price = QueuePrice(vcpu_hour=0.01, gib_hour=0.001, gpu_hour=1.0)
    before, after = moved(
        job(price=price, array_size=100),
        "FAILED",
        attempt=1,
        child_vcpu_hours=50.0,
        child_memory_gib_hours=200.0,
        child_gpu_hours=10.0,
    )
    [told] = status_events(*tell_jobs(teller(), before, after))
    assert told.cost_usd == pytest.approx(50 * 0.01 + 200 * 0.001 + 10 * 1.0)


def test_a_cost_under_a_cent_is_told_to_a_hundredth_of_a_cent() -> None:
    before, after = moved(job(price=QueuePrice(vcpu_hour=0.012)), "SUCCEEDED", attempt=1, usage=Usage(vcpu_hours=0.1))
    [told] = status_events(*tell_jobs(teller(), before, after))
    assert told.cost_usd == 0.0012


def test_no_cost_is_told_before_the_end_nor_without_prices() -> None:
    before, running = moved(job(price=GPU_ON_DEMAND), "RUNNING")
    [started] = status_events(*tell_jobs(teller(), before, running))
    assert started.cost_usd is None
    assert "cost_usd" not in json.loads(started.body())
    before, ended = moved(job(), "SUCCEEDED", attempt=1, usage=Usage(vcpu_hours=2.0))
    [unpriced] = status_events(*tell_jobs(teller(), before, ended))
    assert unpriced.usage is not None
    assert unpriced.cost_usd is None
