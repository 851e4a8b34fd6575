"""Why a job is still RUNNABLE: its place at the front of its queue and its queue's compute environments,
as Batch tells them (botocore's Stubber, no network), in words, and in the stuck advice the watchdog writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from batchdrop.gateways.batch import BatchGateway, BatchRefused, BatchUnavailable
from batchdrop.gateways.queue_state import EnvironmentState, QueuePlace
from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.model import Resources
from batchdrop.store.records import JobRecord, SpecSource, Transition
from batchdrop.track.queue_place import QueueStanding, ordinal, standing_words
from batchdrop.track.reconcile import Reconciler
from batchdrop.track.tracker import Tracker
from tests.unit.fakes import FixedConfig, MemoryTable

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-shared"
SPOT = "arn:aws:batch:us-east-1:123456789012:compute-environment/gpu-spot"
ON_DEMAND = "arn:aws:batch:us-east-1:123456789012:compute-environment/gpu-on-demand"
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def job_arn(job_id: str) -> str:
    return f"arn:aws:batch:us-east-1:123456789012:job/{job_id}"


def snapshot(*job_ids: str) -> dict[str, Any]:
    return {
        "frontOfQueue": {
            "jobs": [
                {"jobArn": job_arn(job_id), "earliestTimeAtPosition": 1_700_000_000_000 + index}
                for index, job_id in enumerate(job_ids)
            ],
            "lastUpdatedAt": 1_700_000_000_000,
        }
    }


def environment(arn: str, *, desired: int, maximum: int = 256, **fields: Any) -> dict[str, Any]:
    return {
        "computeEnvironmentArn": arn,
        "computeEnvironmentName": arn.rsplit("/", 1)[1],
        "ecsClusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/x",
        "status": "VALID",
        "state": "ENABLED",
        "computeResources": {
            "type": "SPOT",
            "minvCpus": 0,
            "maxvCpus": maximum,
            "desiredvCpus": desired,
            "subnets": ["subnet-1"],
            "instanceRole": "role",
        },
        **fields,
    }


def job_queue(*arns: str) -> dict[str, Any]:
    return {
        "jobQueues": [
            {
                "jobQueueName": "gpu-shared",
                "jobQueueArn": QUEUE,
                "state": "ENABLED",
                "priority": 1,
                # Batch may list them out of order: `order` says which is tried first
                "computeEnvironmentOrder": [
                    {"order": index + 1, "computeEnvironment": arn} for index, arn in enumerate(arns)
                ][::-1],
            }
        ]
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def batch() -> Iterator[tuple[BatchGateway, Stubber, Clock]]:
    client = boto3.client(
        "batch", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    clock = Clock()
    with Stubber(client) as stubber:
        yield BatchGateway(client, sleep=lambda _: None, clock=clock), stubber, clock
        stubber.assert_no_pending_responses()


# ---------------------------------------------------------------- words


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 100, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "100th", "101st", "111th"
    ]  # fmt: skip


def test_a_place_behind_an_environment_at_its_maximum() -> None:
    full = EnvironmentState(name="gpu-spot", status="VALID", state="ENABLED", max_vcpus=256, desired_vcpus=256)
    assert standing_words(QueuePlace(position=12, listed=40), [full], "gpu-shared") == (
        "12th in gpu-shared; the queue's environment gpu-spot is at its maximum of 256 vCPUs: "
        "your job starts as others finish"
    )


def test_first_in_line_while_the_environment_scales_up() -> None:
    growing = EnvironmentState(name="gpu-spot", status="VALID", state="ENABLED", max_vcpus=256, desired_vcpus=64)
    assert standing_words(QueuePlace(position=1, listed=3), [growing], "gpu-shared") == (
        "1st in gpu-shared: it is the next to start; "
        "environment gpu-spot is scaling up (64 of at most 256 vCPUs wanted)"
    )


def test_behind_the_first_hundred_or_not_listed_at_all() -> None:
    assert standing_words(QueuePlace(position=None, listed=100), [], "gpu-shared") == (
        "not among the first 100 jobs of gpu-shared"
    )
    assert standing_words(QueuePlace(position=None, listed=2), [], "gpu-shared") == (
        "not at the front of gpu-shared just now (Batch lists 2 jobs there)"
    )


def test_an_invalid_or_disabled_environment_is_for_the_platform_team() -> None:
    broken = EnvironmentState(
        name="gpu-spot", status="INVALID", state="ENABLED", status_reason="CLIENT_ERROR - no such subnet"
    )
    off = EnvironmentState(name="gpu-on-demand", status="VALID", state="DISABLED", max_vcpus=64, desired_vcpus=0)
    assert standing_words(None, [broken, off], "gpu-shared") == (
        "environment gpu-spot is INVALID: CLIENT_ERROR - no such subnet — ask the platform team; "
        "environment gpu-on-demand is DISABLED and starts no jobs — ask the platform team"
    )


def test_the_wait_for_others_is_said_only_when_every_usable_environment_is_full() -> None:
    full = EnvironmentState(name="gpu-spot", status="VALID", state="ENABLED", max_vcpus=256, desired_vcpus=256)
    growing = EnvironmentState(name="gpu-od", status="VALID", state="ENABLED", max_vcpus=64, desired_vcpus=16)
    broken = EnvironmentState(name="gpu-old", status="INVALID", state="ENABLED")
    assert "as others finish" not in standing_words(None, [full, growing], "q")
    assert standing_words(None, [full, broken], "q") == (
        "the queue's environment gpu-spot is at its maximum of 256 vCPUs: your job starts as others finish; "
        "environment gpu-old is INVALID — ask the platform team"
    )


def test_nothing_known_is_no_words() -> None:
    assert standing_words(None, [], "gpu-shared") == ""


# ---------------------------------------------------------------- the gateway


def test_the_place_is_read_from_the_snapshot_and_kept_briefly(batch: tuple[BatchGateway, Stubber, Clock]) -> None:
    gateway, stubber, clock = batch
    stubber.add_response("get_job_queue_snapshot", snapshot("a", "b", "c"), {"jobQueue": QUEUE})
    assert gateway.queue_position(QUEUE, "c") == QueuePlace(
        position=3, listed=3, since=datetime.fromtimestamp(1_700_000_000.002, UTC)
    )
    clock.now = 29.0
    assert gateway.queue_position(QUEUE, "b").position == 2, "the same snapshot, not asked again"
    assert gateway.queue_position(QUEUE, "z") == QueuePlace(position=None, listed=3)
    clock.now = 31.0
    stubber.add_response("get_job_queue_snapshot", snapshot("c"), {"jobQueue": QUEUE})
    assert gateway.queue_position(QUEUE, "c").position == 1, "asked again once 30 seconds have passed"


def test_the_environments_in_the_queues_order(batch: tuple[BatchGateway, Stubber, Clock]) -> None:
    gateway, stubber, _ = batch
    stubber.add_response("describe_job_queues", job_queue(SPOT, ON_DEMAND), {"jobQueues": [QUEUE]})
    stubber.add_response(
        "describe_compute_environments",
        {
            "computeEnvironments": [
                environment(ON_DEMAND, desired=0, maximum=64, state="DISABLED"),
                environment(SPOT, desired=256),
            ]
        },
        {"computeEnvironments": [SPOT, ON_DEMAND]},
    )
    states = gateway.compute_environments_state(QUEUE)
    assert [(state.name, state.at_maximum, state.usable) for state in states] == [
        ("gpu-spot", True, True),
        ("gpu-on-demand", False, False),
    ]
    assert gateway.compute_environments_state(QUEUE) == states, "kept: not asked again"


def test_a_throttled_snapshot_is_unavailable_and_a_refused_one_refused(
    batch: tuple[BatchGateway, Stubber, Clock],
) -> None:
    gateway, stubber, _ = batch
    for _ in range(2):  # asked twice at most: the stuck report does not wait long for it
        stubber.add_client_error("get_job_queue_snapshot", "TooManyRequestsException", http_status_code=429)
    with pytest.raises(BatchUnavailable) as unavailable:
        gateway.queue_position(QUEUE, "a")
    assert unavailable.value.__cause__ is not None
    stubber.add_client_error(
        "get_job_queue_snapshot", "AccessDeniedException", "not authorized: batch:GetJobQueueSnapshot", 403
    )
    with pytest.raises(BatchRefused, match="batch:GetJobQueueSnapshot"):
        gateway.queue_position(QUEUE, "a")


def test_a_throttled_snapshot_still_tells_the_environments(batch: tuple[BatchGateway, Stubber, Clock]) -> None:
    gateway, stubber, _ = batch
    for _ in range(2):
        stubber.add_client_error("get_job_queue_snapshot", "TooManyRequestsException", http_status_code=429)
    stubber.add_response("describe_job_queues", job_queue(SPOT), {"jobQueues": [QUEUE]})
    stubber.add_response(
        "describe_compute_environments",
        {"computeEnvironments": [environment(SPOT, desired=256)]},
        {"computeEnvironments": [SPOT]},
    )
    words = QueueStanding(gateway).words(queue_arn=QUEUE, queue="gpu-shared", job_id="a")
    assert words == "the queue's environment gpu-spot is at its maximum of 256 vCPUs: your job starts as others finish"


# ---------------------------------------------------------------- in the stuck advice


def runnable_job(job_id: str, *, since: datetime) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        run_id="r1",
        team="vision",
        environment="adhoc",
        spec_name="finetune",
        step="main",
        job_name=f"finetune-main-{job_id}",
        queue="gpu-shared",
        queue_arn=QUEUE,
        hardware="gpu",
        job_definition="trainer",
        job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
        resources=Resources(vcpus=8, memory_mib=32768, gpus=1),
        status="RUNNABLE",
        status_since=since,
        history={"0:RUNNABLE": Transition(status="RUNNABLE", at=since)},
        submitted_at=since,
        last_event_at=since,
        spec_digest="0" * 64,
        source=SpecSource(bucket="jobs", key="incoming/vision/finetune.yaml", version_id="v1"),
    )


class StillRunnable:
    """Batch, where the jobs are RUNNABLE still: DescribeJobs, and where they stand (`standing`)."""

    def __init__(self, place: QueuePlace | Exception, environments: list[EnvironmentState]) -> None:
        self.place = place
        self.environments = environments
        self.asked = 0

    def describe(self, job_ids: set[str]) -> dict[str, dict[str, Any]]:
        return {
            job_id: {
                "jobId": job_id,
                "jobName": f"finetune-main-{job_id}",
                "jobQueue": QUEUE,
                "status": "RUNNABLE",
                "createdAt": 1_700_000_000_000,
                "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
            }
            for job_id in job_ids
        }

    def queue_position(self, queue_arn: str, job_id: str) -> QueuePlace:
        self.asked += 1
        if isinstance(self.place, Exception):
            raise self.place
        return self.place

    def compute_environments_state(self, queue: str) -> list[EnvironmentState]:
        return self.environments


FULL = EnvironmentState(name="gpu-spot", status="VALID", state="ENABLED", max_vcpus=64, desired_vcpus=64)


def reconcile(platform_config: PlatformConfig, batch: StillRunnable) -> tuple[MemoryTable, Reconciler]:
    table = MemoryTable()
    table.jobs["j1"] = runnable_job("j1", since=T0)
    tracker = Tracker(table=table, config=FixedConfig(platform_config), region="us-east-1", clock=lambda: T0)
    reconciler = Reconciler(
        tracker=tracker,
        batch=batch,  # type: ignore[arg-type]
        quiet_after=timedelta(0),
        clock=lambda: T0 + timedelta(hours=1),
    )
    return table, reconciler


def test_the_stuck_advice_says_where_the_job_stands(platform_config: PlatformConfig) -> None:
    batch = StillRunnable(QueuePlace(position=12, listed=30), [FULL])
    table, reconciler = reconcile(platform_config, batch)
    assert reconciler.reconcile()["StuckJobs"] == 1
    advice = table.jobs["j1"].stuck_advice or ""
    assert advice.startswith(
        "Where it stands: 12th in gpu-shared; the queue's environment gpu-spot is at its maximum of 64 vCPUs: "
        "your job starts as others finish. The job has waited in queue gpu-shared without starting."
    )
    assert reconciler.reconcile()["StuckJobs"] == 0
    assert batch.asked == 1, "a job already reported for this reason costs Batch no snapshot"


def test_a_snapshot_batch_refuses_leaves_the_advice_without_a_place(platform_config: PlatformConfig) -> None:
    batch = StillRunnable(BatchUnavailable("throttled"), [FULL])
    table, reconciler = reconcile(platform_config, batch)
    assert reconciler.reconcile()["StuckJobs"] == 1
    assert (table.jobs["j1"].stuck_advice or "").startswith(
        "Where it stands: the queue's environment gpu-spot is at its maximum of 64 vCPUs"
    )


def test_an_answer_not_understood_never_stops_the_stuck_report(platform_config: PlatformConfig) -> None:
    batch = StillRunnable(KeyError("frontOfQueue"), [])
    table, reconciler = reconcile(platform_config, batch)
    assert reconciler.reconcile()["StuckJobs"] == 1
    assert (table.jobs["j1"].stuck_advice or "").startswith("The job has waited in queue gpu-shared")
