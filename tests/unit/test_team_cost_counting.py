"""Team costs as tracking counts them (`track.costs`), against an in-memory table and ledger: which ends are
counted, what each adds, and what a count that fails or repeats does. The real ledger's exactly-once
(a transaction with a marker on the job) is proven on the emulator: tests/integration/test_team_costs.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from batchdrop_local.state_changes import attempt, sample_job, state_change

from batchdrop.platform.config import PlatformConfig, QueuePrice
from batchdrop.store.costs import JobCost, MonthStanding
from batchdrop.store.records import TERMINAL, JobRecord
from batchdrop.track.batch_events import BatchEvent
from batchdrop.track.batches import Delivery, TrackResult
from batchdrop.track.tracker import Tracker
from tests.recordkit import at, job_record, run_of_jobs
from tests.unit.fakes import FixedConfig, MemoryTable

PRICE = QueuePrice(vcpu_hour=0.5, gib_hour=0.25)


class MemoryLedger:
    """The months, with the real ledger's rule: a job is added once, and only once it has finished."""

    def __init__(self, table: MemoryTable) -> None:
        self.table = table
        self.counted: dict[str, JobCost] = {}
        self.calls = 0
        self.refusing = False

    def count(self, cost: JobCost) -> bool:
        self.calls += 1
        if self.refusing:
            raise RuntimeError("DynamoDB refused the transaction")
        job = self.table.jobs.get(cost.job_id)
        if cost.job_id in self.counted or job is None or job.status not in TERMINAL:
            return False
        self.counted[cost.job_id] = cost
        return True


@pytest.fixture
def world(platform_config: PlatformConfig) -> tuple[Tracker, MemoryTable, MemoryLedger]:
    table = MemoryTable()
    jobs = [
        job_record("a", "prep").model_copy(update={"price": PRICE}),
        job_record("b", "train", depends_on=["a"]).model_copy(update={"price": PRICE}),
        job_record("u", "unpriced"),
    ]
    table.write_new([run_of_jobs(jobs)], jobs)
    ledger = MemoryLedger(table)
    tracker = Tracker(
        table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60), costs=ledger
    )
    return tracker, table, ledger


def deliver(tracker: Tracker, *events: dict[str, Any]) -> TrackResult:
    return tracker.track(Delivery(f"msg-{index}", BatchEvent.model_validate(e)) for index, e in enumerate(events))


def end_of(job: JobRecord, *, fail: bool = False) -> dict[str, Any]:
    """The job's end after 6 minutes running, with 8 vCPUs and 16 GiB (the sample job Batch shows)."""
    view = sample_job(job.job_id, name=job.job_name, gpus=0)
    view["tags"]["batchdrop:run-id"] = job.run_id
    last = attempt(view, 1, started=at(3), stopped=at(9), exit_code=1 if fail else 0)
    return state_change(view, "FAILED" if fail else "SUCCEEDED", at=at(9), attempts=[last], exit_code=int(fail))


def test_an_ended_job_adds_its_cost_and_hours_to_its_teams_month_and_the_dashboards_figure(world) -> None:
    tracker, table, ledger = world
    result = deliver(tracker, end_of(table.jobs["a"]))

    cost = ledger.counted["a"]
    usage = table.jobs["a"].usage
    assert usage is not None
    assert cost.usage == usage
    assert cost.usd == pytest.approx(usage.vcpu_hours * 0.5 + usage.memory_gib_hours * 0.25)
    assert (cost.team, cost.month, cost.queue, cost.spec_name) == ("vision", "2026-11", "cpu-shared", "p")
    assert result.costs == {"vision": pytest.approx(cost.usd)}
    assert result.counts["CostsCounted"] == 1


def test_a_failed_job_counts_and_the_steps_failed_after_it_never_ran_so_do_not(world) -> None:
    tracker, table, ledger = world
    deliver(tracker, end_of(table.jobs["a"], fail=True))

    assert table.jobs["b"].status == "FAILED", "failed by its upstream step, on batchdrop's word"
    assert set(ledger.counted) == {"a"}


def test_a_job_on_a_queue_without_prices_adds_its_hours_and_no_dollars(world) -> None:
    tracker, table, ledger = world
    result = deliver(tracker, end_of(table.jobs["u"]))

    assert ledger.counted["u"].usd is None
    assert ledger.counted["u"].figures()["unpriced_jobs"] == 1
    assert ledger.counted["u"].usage.vcpu_hours > 0
    assert result.costs == {}, "the dashboard's dollars leave it out"


def test_the_same_end_twice_is_counted_once_and_this_instance_asks_the_ledger_once(world) -> None:
    tracker, table, ledger = world
    end = end_of(table.jobs["a"])
    deliver(tracker, end)
    again = deliver(tracker, end)
    deliver(tracker, end, end)

    assert list(ledger.counted) == ["a"]
    assert again.costs == {}
    assert ledger.calls == 1


def test_a_count_that_fails_sends_the_end_back_and_its_return_counts_it(world) -> None:
    tracker, table, ledger = world
    ledger.refusing = True
    failed = deliver(tracker, end_of(table.jobs["a"]))
    assert failed.failed == {"msg-0"}, "its message goes back to the queue"
    assert table.jobs["a"].status == "SUCCEEDED", "its end is recorded all the same"

    ledger.refusing = False
    returned = deliver(tracker, end_of(table.jobs["a"]))
    assert returned.failed == set()
    assert list(ledger.counted) == ["a"]


def test_without_a_ledger_nothing_is_counted(platform_config: PlatformConfig) -> None:
    table = MemoryTable()
    job = job_record("a", "prep").model_copy(update={"price": PRICE})
    table.write_new([run_of_jobs([job])], [job])
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60))
    result = deliver(tracker, end_of(job))
    assert result.costs == {}
    assert "CostsCounted" not in result.counts


# ---------------------------------------------------------------- the month as it stands (the dashboard's)


class StandingLedger(MemoryLedger):
    """A ledger that also says where its team's month stands after each count (`TeamCosts.standing`)."""

    def __init__(self, table: MemoryTable, monthly_usd: float | None) -> None:
        super().__init__(table)
        self.monthly_usd = monthly_usd

        self.reads: list[tuple[str, str]] = []
        self.unreadable = False

    def standing(self, cost: JobCost) -> MonthStanding:
        if self.unreadable:
            raise RuntimeError("DynamoDB is unavailable")
        self.reads.append((cost.team, cost.month))
        spent = sum(c.usd or 0.0 for c in self.counted.values() if (c.team, c.month) == (cost.team, cost.month))
        return MonthStanding(team=cost.team, month=cost.month, usd=spent, monthly_usd=self.monthly_usd)


def standing_world(platform_config: PlatformConfig, *, now: datetime) -> tuple[Tracker, MemoryTable, StandingLedger]:
    table = MemoryTable()
    jobs = [
        job_record("a", "prep").model_copy(update={"price": PRICE}),
        job_record("b", "train").model_copy(update={"price": PRICE}),
    ]
    table.write_new([run_of_jobs(jobs)], jobs)
    ledger = StandingLedger(table, monthly_usd=500.0)
    tracker = Tracker(
        table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60), costs=ledger
    )
    assert tracker.costs is not None
    tracker.costs.clock = lambda: now
    return tracker, table, ledger


def test_each_teams_month_so_far_and_its_budget_are_told_after_its_counts(platform_config: PlatformConfig) -> None:
    tracker, table, ledger = standing_world(platform_config, now=at(60))
    result = deliver(tracker, end_of(table.jobs["a"]), end_of(table.jobs["b"]))

    (told,) = result.months.values()
    assert (told.team, told.month, told.monthly_usd) == ("vision", "2026-11", 500.0)
    assert told.usd == pytest.approx(sum(cost.usd or 0.0 for cost in ledger.counted.values()))
    assert told.usd == pytest.approx(sum(result.costs.values())), "both ends are in the month told"


def test_a_late_end_of_last_month_is_counted_into_it_but_not_told_as_this_months_figure(
    platform_config: PlatformConfig,
) -> None:
    tracker, table, ledger = standing_world(platform_config, now=at(60) + timedelta(days=10))  # in December
    result = deliver(tracker, end_of(table.jobs["a"]))

    assert list(ledger.counted) == ["a"], "counted into November, where it ended"
    assert result.months == {}


def test_a_batch_of_one_teams_ends_reads_its_month_once_after_counting_them_all(
    platform_config: PlatformConfig,
) -> None:
    tracker, table, ledger = standing_world(platform_config, now=at(60))
    result = deliver(tracker, end_of(table.jobs["a"]), end_of(table.jobs["b"]))

    assert ledger.reads == [("vision", "2026-11")], "one strongly consistent read, not one per ended job"
    assert result.months["vision"].usd == pytest.approx(sum(c.usd or 0.0 for c in ledger.counted.values()))


def test_a_copy_of_an_end_already_counted_still_reads_the_month_its_first_delivery_may_not_have_marked(
    platform_config: PlatformConfig,
) -> None:
    tracker, table, ledger = standing_world(platform_config, now=at(60))
    end = end_of(table.jobs["a"])
    deliver(tracker, end)
    other_instance = Tracker(  # which has not seen it: it asks the ledger, which refuses
        table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: at(60), costs=ledger
    )
    assert other_instance.costs is not None
    other_instance.costs.clock = lambda: at(60)

    result = deliver(other_instance, end)
    assert result.counts["CostsCounted"] == 0, "refused: counted by the first delivery"
    assert ledger.reads == [("vision", "2026-11")] * 2
    assert "vision" in result.months


def test_a_month_that_cannot_be_read_sends_its_ends_back_and_their_return_reads_it(
    platform_config: PlatformConfig,
) -> None:
    tracker, table, ledger = standing_world(platform_config, now=at(60))
    ledger.unreadable = True
    failed = deliver(tracker, end_of(table.jobs["a"]), end_of(table.jobs["b"]))
    assert failed.failed == {"msg-0", "msg-1"}, "both ends go back: the month they were counted into is untold"
    assert set(ledger.counted) == {"a", "b"}, "counted all the same (the count is its own write)"

    ledger.unreadable = False
    returned = deliver(tracker, end_of(table.jobs["a"]), end_of(table.jobs["b"]))
    assert returned.failed == set()
    assert ledger.reads == [("vision", "2026-11")]
    assert returned.months["vision"].usd == pytest.approx(sum(c.usd or 0.0 for c in ledger.counted.values()))
