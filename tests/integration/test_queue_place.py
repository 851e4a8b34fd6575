"""Why is my job still RUNNABLE? On the emulator, over HTTP with real boto3 clients: the local Batch fills a
queue's 4-vCPU environment with one job and keeps two waiting in line behind it; GetJobQueueSnapshot names
their places, DescribeComputeEnvironments shows the environment at its maximum, and the watchdog's stuck
advice says where each job stands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from batchdrop_local.batch_fleet import provision_batch
from batchdrop_local.batch_lifecycle import LocalBatch, Scenario

from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway
from batchdrop.platform.config import PlatformConfig, parse_platform_config
from batchdrop.spec.model import Resources
from batchdrop.store.items import job_item, read_job
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import JobRecord, SpecSource, Transition
from batchdrop.track.queue_place import QueueStanding
from batchdrop.track.reconcile import Reconciler
from batchdrop.track.tracker import Tracker
from tests.conftest import EXAMPLES
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/place-cpu"
DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3"
ENVIRONMENT = "batchdrop-local-place-cpu"


@dataclass
class Line:
    """Three jobs of 4 vCPUs dropped on a queue whose environment has 4: the first runs, two wait."""

    stack: LocalStack
    batch: LocalBatch
    config: PlatformConfig
    jobs: list[str]


def _record(job_id: str, name: str) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(
        job_id=job_id,
        run_id="placerun",
        team="vision",
        environment="adhoc",
        spec_name=name,
        step="main",
        job_name=f"{name}-main-placerun",
        queue="place-cpu",
        queue_arn=QUEUE,
        hardware="cpu",
        job_definition="trainer",
        job_definition_arn=DEFINITION,
        resources=Resources(vcpus=4, memory_mib=4096),
        history={"0:SUBMITTED": Transition(status="SUBMITTED", at=now)},
        submitted_at=now,
        last_event_at=now,
        spec_digest="0" * 64,
        source=SpecSource(bucket="jobs", key=f"incoming/vision/{name}.yaml", version_id="v1"),
    )


@pytest.fixture
def line(local_stack: LocalStack) -> Iterator[Line]:
    config = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
    example = config.queues["cpu-shared"]
    small = example.model_copy(update={"arn": QUEUE, "max_vcpus": 4, "capacity": "on_demand"})
    config = config.model_copy(update={"queues": {**config.queues, "place-cpu": small}})
    provision_batch(local_stack.aws, config.model_copy(update={"queues": {"place-cpu": small}, "teams": {}}))
    scenario = Scenario(fates=[], seconds={"queued": 0.05, "starting": 0.05, "running": 120.0})
    batch = LocalBatch(
        local_stack.aws, queues=[QUEUE], table=local_stack.table, scenario=scenario, interval=0.02, limit_vcpus=True
    ).start()
    jobs = []
    for name in ("first", "second", "third"):
        job_id = local_stack.client("batch").submit_job(
            jobName=f"{name}-main-placerun",
            jobQueue=QUEUE,
            jobDefinition=DEFINITION,
            containerOverrides={
                "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "4096"}]
            },
            tags={"batchdrop:run-id": "placerun", "batchdrop:step": "main"},
        )["jobId"]
        local_stack.client("dynamodb").put_item(TableName=local_stack.table, Item=job_item(_record(job_id, name)))
        jobs.append(job_id)
        time.sleep(0.3)  # the local Batch sees them one after the other: they queue in this order
    try:
        yield Line(local_stack, batch, config, jobs)
    finally:
        batch.stop()


def _waiting_in_line(gateway: BatchGateway, line: Line) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        gateway.queue_ttl = 0.0  # while waiting, every look is a fresh snapshot
        if gateway.queue_position(QUEUE, line.jobs[2]).listed == 2:
            gateway.queue_ttl = 30.0
            return
        time.sleep(0.1)
    statuses = {job_id: job.status for job_id, job in line.batch.jobs.items()}
    pytest.fail(f"the two jobs never waited in line: {statuses}")


def test_a_job_behind_others_is_told_its_place_and_the_full_environment(line: Line) -> None:
    gateway = BatchGateway(line.stack.client("batch"))
    _waiting_in_line(gateway, line)
    first, second, third = line.jobs
    assert line.batch.jobs[first].status in {"STARTING", "RUNNING"}
    assert gateway.queue_position(QUEUE, second).position == 1
    assert gateway.queue_position(QUEUE, third).position == 2
    assert gateway.queue_position(QUEUE, first).position is None, "a started job has left the line"
    [environment] = gateway.compute_environments_state(QUEUE)
    assert (environment.name, environment.max_vcpus, environment.desired_vcpus) == (ENVIRONMENT, 4, 4)

    words = QueueStanding(gateway).words(queue_arn=QUEUE, queue="place-cpu", job_id=third)
    assert words == (
        f"2nd in place-cpu; the queue's environment {ENVIRONMENT} is at its maximum of 4 vCPUs: "
        "your job starts as others finish"
    )


class _AsTheLocalBatchHasIt(BatchGateway):
    """The emulator's Batch, but DescribeJobs as the local Batch has the jobs (moto's has finished them)."""

    def __init__(self, client: Any, local: LocalBatch) -> None:
        super().__init__(client)
        self.local = local

    def describe(self, job_ids: set[str]) -> dict[str, dict[str, Any]]:
        found = super().describe(job_ids)
        return {job_id: {**job, "status": self.local.jobs[job_id].status} for job_id, job in found.items()}


def test_the_watchdogs_stuck_advice_says_where_each_waiting_job_stands(line: Line) -> None:
    gateway = _AsTheLocalBatchHasIt(line.stack.client("batch"), line.batch)
    _waiting_in_line(gateway, line)
    dynamodb = line.stack.client("dynamodb")

    class Config:
        def get(self) -> PlatformConfig:
            return line.config

    tracker = Tracker(table=JobStates(dynamodb, line.stack.table), config=Config(), region="us-east-1")
    reconciler = Reconciler(
        tracker=tracker,
        batch=gateway,
        quiet_after=timedelta(0),
        runnable_after=timedelta(0),
        clock=lambda: datetime.now(UTC) + timedelta(minutes=1),
    )
    assert reconciler.reconcile()["StuckJobs"] == 2
    advice = {
        job_id: (read_job(dynamodb, line.stack.table, job_id) or _record(job_id, "")).stuck_advice
        for job_id in line.jobs
    }
    assert advice[line.jobs[0]] is None, "the running job is not stuck"
    assert (advice[line.jobs[1]] or "").startswith("Where it stands: 1st in place-cpu: it is the next to start; ")
    assert (advice[line.jobs[2]] or "").startswith(
        f"Where it stands: 2nd in place-cpu; the queue's environment {ENVIRONMENT} is at its maximum of 4 vCPUs: "
        "your job starts as others finish. The job has waited in queue place-cpu without starting"
    )


def test_a_throttled_snapshot_leaves_the_place_out_and_the_environment_in(faults: FaultProxy, line: Line) -> None:
    """Beneath botocore: Batch throttles every GetJobQueueSnapshot; the gateway's client makes one attempt
    a call, the gateway two, and the words still tell the full environment."""
    _waiting_in_line(BatchGateway(line.stack.client("batch")), line)
    faults.throttle("batch", "GetJobQueueSnapshot", times=None)
    gateway = BatchGateway(faults.client("batch", BATCH_CLIENT_CONFIG), sleep=lambda _: None)
    words = QueueStanding(gateway).words(queue_arn=QUEUE, queue="place-cpu", job_id=line.jobs[2])
    assert words == (
        f"the queue's environment {ENVIRONMENT} is at its maximum of 4 vCPUs: your job starts as others finish"
    )
    assert faults.count("batch", "GetJobQueueSnapshot") == 2, "asked twice, then left out"
