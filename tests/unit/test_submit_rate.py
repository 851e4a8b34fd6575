"""The account's SubmitJob budget: one schedule every submit instance books its calls on (DynamoDB: moto
in-process), or an instance's own share when the schedule cannot be booked; never more than the rate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws

from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway
from batchdrop.gateways.submit_rate import UNBOOKABLE_PAUSE, SharedSubmitRate, SubmitRate
from batchdrop.store.submit_slots import SlotsUnavailable, SubmitSlots
from batchdrop.wiring.settings import SubmitSettings, load_settings
from tests.recordkit import create_records_table

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-shared"
TABLE = "records"


class FakeClock:
    """Time that moves only when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def paced(per_second: float, burst: float = 1.0) -> tuple[SubmitRate, FakeClock]:
    clock = FakeClock()
    return SubmitRate(per_second, burst=burst, clock=clock, sleep=clock.sleep), clock


def test_calls_in_a_row_are_spaced_at_the_rate() -> None:
    rate, clock = paced(8.0)
    started = clock.now
    for _ in range(81):
        rate.take()
    assert clock.now - started == pytest.approx(10.0), "81 calls at 8 a second: the first at once, 80 in 10 s"
    assert rate.waited == pytest.approx(10.0)


def test_an_idle_instance_calls_at_once_but_saves_no_more_than_its_burst() -> None:
    rate, clock = paced(2.0, burst=3.0)
    clock.now += 3600  # an hour idle
    assert [rate.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rate.take() == pytest.approx(0.5), "the fourth waits for a new token"


def test_no_window_of_a_second_holds_more_calls_than_the_rate_and_the_burst() -> None:
    rate, clock = paced(5.0)
    times = []
    for index in range(200):
        if index % 7 == 0:
            clock.now += 0.13  # work between calls, less than the gap
        rate.take()
        times.append(clock.now)
    for start in times:
        assert sum(1 for at in times if start <= at < start + 1.0) <= 5 + 1


def test_a_clock_that_goes_back_never_makes_a_call_wait_longer_than_one_gap() -> None:
    rate, clock = paced(2.0)
    rate.take()
    clock.now -= 3600  # a snapshot restored on a host whose monotonic clock reads earlier
    assert rate.take() <= 0.5
    assert rate.take() == pytest.approx(0.5)


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SubmitRate(0)


def test_every_submit_attempt_takes_a_token_a_throttled_one_too() -> None:
    batch_client = boto3.client(
        "batch",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BATCH_CLIENT_CONFIG,
    )
    rate, clock = paced(4.0)
    backoffs: list[float] = []
    gateway = BatchGateway(batch_client, sleep=backoffs.append, submit_rate=rate)
    request: dict[str, Any] = {"jobName": "run-main", "jobQueue": QUEUE, "jobDefinition": "arn:aws:batch:x"}
    with Stubber(batch_client) as stubber:
        stubber.add_client_error("submit_job", "TooManyRequestsException", http_status_code=429)
        stubber.add_response("submit_job", {"jobId": "j-1", "jobName": "run-main", "jobArn": "arn"})
        stubber.add_response("submit_job", {"jobId": "j-2", "jobName": "run-main", "jobArn": "arn"})
        assert gateway.submit(request).job_id == "j-1"
        assert gateway.submit(request).job_id == "j-2"
        stubber.assert_no_pending_responses()
    assert clock.sleeps == pytest.approx([0.25, 0.25]), "three calls at 4 a second: two waits of a quarter second"
    assert len(backoffs) == 1, "the throttle still backs off"


def test_the_submit_function_takes_its_share_of_the_budget_from_the_template() -> None:
    environment = {"TABLE_NAME": "records", "BATCHDROP_PLATFORM_CONFIG": "s3://b/platform.yaml"}
    defaults = load_settings(SubmitSettings, environment)
    assert (defaults.submit_jobs_per_second, defaults.submit_instances) == (40.0, 5)
    chosen = load_settings(
        SubmitSettings, {**environment, "SUBMIT_JOBS_PER_SECOND": "25", "SUBMIT_MAX_CONCURRENCY": "10"}
    )
    assert chosen.submit_jobs_per_second / chosen.submit_instances == 2.5


@pytest.fixture
def slots() -> Iterator[SubmitSlots]:
    with mock_aws():
        dynamodb = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        create_records_table(dynamodb, TABLE)
        yield SubmitSlots(dynamodb, TABLE)


def test_instances_booking_at_once_get_one_slot_each_in_turn(slots: SubmitSlots) -> None:
    starts = [slots.book(0.025, now=5000.0, horizon=10.0) for _ in range(4)]  # four instances, the same moment
    assert starts == pytest.approx([5000.0, 5000.025, 5000.05, 5000.075])


def test_a_schedule_nobody_booked_for_a_while_starts_again_at_now(slots: SubmitSlots) -> None:
    slots.book(0.5, now=5000.0, horizon=10.0)
    slots.book(0.5, now=5000.0, horizon=10.0)
    assert slots.book(0.5, now=5060.0, horizon=10.0) == pytest.approx(5060.0), "an idle minute is not owed to anyone"
    assert slots.book(0.5, now=5060.1, horizon=10.0) == pytest.approx(5060.5)


def test_a_schedule_carried_beyond_the_horizon_starts_again_at_now_not_further(slots: SubmitSlots) -> None:
    slots.book(3600.0, now=5000.0, horizon=7200.0)  # a host an hour fast, or botocore's re-sent ADDs
    assert slots.book(0.5, now=5000.0, horizon=10.0) == pytest.approx(5000.0), "not carried on past an hour"
    assert slots.book(0.5, now=5000.0, horizon=10.0) == pytest.approx(5000.5)


def test_a_booking_that_gets_no_answer_is_slots_unavailable_not_a_trace() -> None:
    dynamodb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )

    def no_answer(request: Any, **_: Any) -> None:
        raise ReadTimeoutError(endpoint_url=request.url)

    dynamodb.meta.events.register("before-send.dynamodb", no_answer)
    with pytest.raises(SlotsUnavailable, match="cannot book"):
        SubmitSlots(dynamodb, TABLE).book(0.5, now=5000.0, horizon=10.0)


def test_an_instance_with_work_uses_the_idle_ones_share_booking_three_calls_at_a_time() -> None:
    """A budget of 10 a second meant for 5 instances: alone, one makes all 10, one write per 3 calls."""
    clock = FakeClock()
    schedule = FakeSlots()
    rate = SharedSubmitRate(schedule, 10.0, 5, clock=clock, sleep=clock.sleep)
    started = clock.now
    for _ in range(99):
        rate.take()
    assert clock.now - started == pytest.approx(9.8), "99 calls at 10 a second: the last after 9.8 s"
    assert rate.bookings == 33


def test_instances_booking_in_turn_never_make_more_calls_than_the_slots() -> None:
    """Two instances calling as fast as they can: every call is in a slot booked for it, or a little late."""
    clock = FakeClock()
    schedule = FakeSlots()
    instances = [SharedSubmitRate(schedule, 10.0, 5, clock=clock, sleep=clock.sleep) for _ in range(2)]
    started = clock.now
    calls = []
    for _ in range(30):
        for instance in instances:
            instance.take()
            calls.append(clock.now)
    assert len(calls) <= round((schedule.next - started) * 10.0), "no more calls than the slots booked"
    for at in calls:
        assert sum(1 for other in calls if at <= other < at + 1.0) <= 10 + 2 * 2, "the rate, and two late per instance"


def test_a_booked_slot_long_gone_by_is_let_go_and_the_call_books_again() -> None:
    clock = FakeClock()
    schedule = FakeSlots()
    rate = SharedSubmitRate(schedule, 10.0, 5, clock=clock, sleep=clock.sleep)
    rate.take()
    clock.now += 5.0  # a long read: the two slots left are seconds old
    assert rate.take() == 0.0
    assert rate.bookings == 2


def test_an_unbookable_schedule_paces_the_instance_to_its_own_share() -> None:
    clock = FakeClock()
    schedule = FakeSlots(failing=True)
    rate = SharedSubmitRate(schedule, 10.0, 5, clock=clock, sleep=clock.sleep)
    started = clock.now
    for _ in range(5):
        rate.take()
    assert clock.now - started == pytest.approx(2.0), "its own share: 2 a second, the first at once"


def test_a_schedule_that_cannot_be_booked_is_not_asked_again_for_a_while() -> None:
    """While DynamoDB fails, each booking costs botocore's retries: one booking pays them, not every call."""
    clock = FakeClock()
    schedule = FakeSlots(failing=True)
    rate = SharedSubmitRate(schedule, 10.0, 5, clock=clock, sleep=clock.sleep)
    for _ in range(40):  # 20 s at its own share of 2 a second
        rate.take()
    assert schedule.attempts == 1
    schedule.failing = False
    clock.now += UNBOOKABLE_PAUSE
    rate.take()
    assert (schedule.attempts, rate.bookings) == (2, 1), "booked again once the pause is over"


def test_more_instances_than_the_budget_serves_at_once_wait_their_turn_and_never_carry_the_schedule_away() -> None:
    """4 calls a second shared by 20 busy instances: each waits for its booked slot (a booking of 3 slots
    each puts the schedule 15 s ahead), none falls back to its own share, and the schedule stays within
    reach."""
    clock = FakeClock()
    schedule = FakeSlots()
    instances = [SharedSubmitRate(schedule, 4.0, 20, clock=clock, sleep=clock.sleep) for _ in range(20)]
    started = clock.now
    calls = []
    for _ in range(6):
        for instance in instances:
            instance.take()
            calls.append(clock.now)
            assert schedule.next - clock.now <= instance.horizon
    assert sum(instance.own_share_calls for instance in instances) == 0, "every call in a booked slot"
    assert len(calls) <= round((schedule.next - started) * 4.0), "no more calls than the slots booked"


def test_a_schedule_booked_far_ahead_is_not_waited_out() -> None:
    clock = FakeClock()
    schedule = FakeSlots()
    schedule.next = clock.now + 3600  # an instance whose clock ran an hour fast booked it
    rate = SharedSubmitRate(schedule, 10.0, 5, clock=clock, sleep=clock.sleep)
    assert [rate.take() for _ in range(3)] == pytest.approx([0.0, 0.5, 0.5]), "its own share: 2 a second"


class FakeSlots(SubmitSlots):
    """The schedule's arithmetic without a table (or a table that does not answer)."""

    def __init__(self, *, failing: bool = False) -> None:
        self.next = 0.0
        self.failing = failing
        self.attempts = 0

    def book(self, slot_seconds: float, now: float, horizon: float = float("inf")) -> float:
        self.attempts += 1
        if self.failing:
            raise SlotsUnavailable("the table does not answer")
        start = max(now, self.next)
        self.next = start + slot_seconds
        return start
