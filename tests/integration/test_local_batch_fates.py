"""The local Batch plays the failures recovery needs, for jobs submitted straight to its queues with
boto3: out of memory only below a memory, spot reclaims only on spot capacity and at most so many
times per spec and step, only some children of an array failing (by their original index), and
retries decided by the job's own retryStrategy. What it did is read from the "Batch Job State
Change" events it sent (a rule of the test's own copies them into a queue)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from batchdrop_local.batch_fleet import provision_batch
from batchdrop_local.batch_lifecycle import JobFate, LocalBatch, Scenario

from batchdrop.platform.config import parse_platform_config
from batchdrop.store.items import active_shard
from tests.conftest import EXAMPLES
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3"
SPOT = "arn:aws:batch:us-east-1:123456789012:job-queue/fates-spot"
ON_DEMAND = "arn:aws:batch:us-east-1:123456789012:job-queue/fates-on-demand"
RUN = "fatesrunabcdefghijklm"
BATCHDROP_RULES = {
    "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]
}
SCENARIO = Scenario(
    fates=[
        JobFate(spec="oom", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="spotty", outcome="spot_reclaim", times=2),
        JobFate(spec="sweep", outcome="fail", exit_code=3, fail_children=(1, 3)),
    ],
    seconds={"queued": 0.05, "starting": 0.05, "running": 0.1, "child": 0.05},
)


class Fates:
    def __init__(self, stack: LocalStack, probe: str) -> None:
        self.stack = stack
        self.probe = probe
        self.events: list[dict[str, Any]] = []

    def submit(
        self,
        name: str,
        *,
        queue: str = ON_DEMAND,
        memory_mib: int = 4096,
        retry: dict[str, Any] | None = None,
        size: int | None = None,
        environment: dict[str, str] | None = None,
        recovery: str = "",
    ) -> str:
        """SubmitJob as batchdrop sends it, and the job's record as batchdrop writes it (the local
        Batch follows the recorded jobs)."""
        request: dict[str, Any] = {
            "jobName": f"{name}-{RUN}{recovery}",  # `<spec>-<step>-<run id>`, and a recovery suffix
            "jobQueue": queue,
            "jobDefinition": DEFINITION,
            "containerOverrides": {
                "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": str(memory_mib)}],
                "environment": [{"name": key, "value": value} for key, value in (environment or {}).items()],
            },
            "tags": {"batchdrop:run-id": RUN, "batchdrop:step": "main"},
        }
        if retry is not None:
            request["retryStrategy"] = retry
        if size is not None:
            request["arrayProperties"] = {"size": size}
        job_id: str = self.stack.client("batch").submit_job(**request)["jobId"]
        attempts = (retry or {}).get("attempts", 1)
        self.stack.client("dynamodb").put_item(
            TableName=self.stack.table,
            Item={
                "PK": {"S": f"JOB#{job_id}"},
                "SK": {"S": "JOB"},
                "GSI1PK": {"S": active_shard(job_id)},
                "GSI1SK": {"S": f"0#{job_id}"},
                "job_id": {"S": job_id},
                "resources": {"M": {"vcpus": {"N": "2"}, "memory_mib": {"N": str(memory_mib)}}},
                "max_attempts": {"N": str(attempts)},
            },
        )
        return job_id

    def ended(self, job_id: str) -> dict[str, Any]:
        """The job's last event: the one that ended it (waited for)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ends = [event for event in self.of(job_id) if event["status"] in {"SUCCEEDED", "FAILED"}]
            if ends:
                return ends[-1]
            self._receive()
        pytest.fail(f"job {job_id} did not end; its events: {[event['status'] for event in self.of(job_id)]}")

    def of(self, job_id: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["jobId"] == job_id]

    def _receive(self) -> None:
        sqs = self.stack.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.probe, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            self.events.append(json.loads(message["Body"])["detail"])
            sqs.delete_message(QueueUrl=self.probe, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def fates(local_stack: LocalStack) -> Iterator[Fates]:
    """Two more queues, one on spot capacity and one on-demand, as the platform config would say them;
    the local Batch following every queue; and every Batch event copied into a probe queue."""
    config = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
    example = next(iter(config.queues.values()))
    queues = {
        "fates-spot": example.model_copy(update={"arn": SPOT, "capacity": "spot"}),
        "fates-on-demand": example.model_copy(update={"arn": ON_DEMAND, "capacity": "on_demand"}),
    }
    provision_batch(local_stack.aws, config.model_copy(update={"queues": queues, "teams": {}}))
    sqs = local_stack.client("sqs")
    probe = sqs.create_queue(QueueName="batch-events-probe")["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = local_stack.client("events")
    events.put_rule(Name="batch-events-probe", EventPattern=json.dumps({"source": ["aws.batch"]}))
    events.put_targets(Rule="batch-events-probe", Targets=[{"Id": "probe", "Arn": probe_arn}])
    batch = LocalBatch(
        local_stack.aws,
        queues=[*local_stack.queue_arns, SPOT, ON_DEMAND],
        table=local_stack.table,
        scenario=SCENARIO,
        interval=0.02,
    ).start()
    try:
        yield Fates(local_stack, probe)
    finally:
        batch.stop()


def _attempts(event: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(attempt["statusReason"], attempt["container"].get("exitCode")) for attempt in event["attempts"]]


def test_each_queue_runs_on_the_capacity_its_config_says(local_stack: LocalStack, fates: Fates) -> None:
    batch = local_stack.client("batch")
    config = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
    said = {queue.arn: "SPOT" if queue.capacity == "spot" else "EC2" for queue in config.queues.values()}
    said |= {SPOT: "SPOT", ON_DEMAND: "EC2"}
    for arn, capacity in said.items():
        [queue] = batch.describe_job_queues(jobQueues=[arn])["jobQueues"]
        environments = [each["computeEnvironment"] for each in queue["computeEnvironmentOrder"]]
        [environment] = batch.describe_compute_environments(computeEnvironments=environments)["computeEnvironments"]
        assert environment["computeResources"]["type"] == capacity, arn


def test_out_of_memory_below_the_threshold_then_success_with_more_memory(fates: Fates) -> None:
    small = fates.submit("oom-main", memory_mib=4096, retry={"attempts": 3, **BATCHDROP_RULES})
    [described] = fates.stack.client("batch").describe_jobs(jobs=[small])["jobs"]  # as Batch shows the request
    assert described["retryStrategy"] == {"attempts": 3, **BATCHDROP_RULES}
    assert {"type": "MEMORY", "value": "4096"} in described["container"]["resourceRequirements"]
    ended = fates.ended(small)
    assert ended["status"] == "FAILED"
    assert ended["container"]["exitCode"] == 137
    [attempt] = ended["attempts"]  # batchdrop's rules: a container's failure is not retried by Batch
    assert attempt["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"

    larger = fates.submit("oom-main", recovery="-r1", memory_mib=16384, retry={"attempts": 3, **BATCHDROP_RULES})
    ended = fates.ended(larger)
    assert (ended["status"], _attempts(ended)) == ("SUCCEEDED", [("Essential container in task exited", 0)])


def test_without_rules_batch_retries_every_failed_attempt_until_attempts_run_out(fates: Fates) -> None:
    job = fates.submit("oom-main", memory_mib=4096, retry={"attempts": 2})
    ended = fates.ended(job)
    assert ended["status"] == "FAILED"
    assert [code for _, code in _attempts(ended)] == [137, 137]


def test_reclaimed_twice_on_spot_never_on_demand(fates: Fates) -> None:
    reclaimed = "Host EC2 (instance i-0bd1e2f3a4b5c6d7e) terminated."
    on_demand = fates.submit("spotty-main", queue=ON_DEMAND, retry={"attempts": 2, **BATCHDROP_RULES})
    ended = fates.ended(on_demand)
    assert (ended["status"], len(ended["attempts"])) == ("SUCCEEDED", 1)

    spot = fates.submit("spotty-main", queue=SPOT, retry={"attempts": 2, **BATCHDROP_RULES})
    ended = fates.ended(spot)
    assert ended["status"] == "FAILED"
    assert ended["statusReason"] == reclaimed
    assert _attempts(ended) == [(reclaimed, None), (reclaimed, None)]
    assert [event["status"] for event in fates.of(spot)].count("RUNNABLE") == 2  # retried once by Batch

    again = fates.submit("spotty-main", recovery="-rc3f9a", queue=SPOT, retry={"attempts": 2, **BATCHDROP_RULES})
    ended = fates.ended(again)  # the spec's two reclaims were spent by the job before it
    assert (ended["status"], _attempts(ended)) == ("SUCCEEDED", [("Essential container in task exited", 0)])


def _children(fates: Fates, parent: str, size: int) -> dict[int, str]:
    return {index: fates.ended(f"{parent}:{index}")["status"] for index in range(size)}


def test_fail_children_fails_exactly_those(fates: Fates) -> None:
    parent = fates.submit("sweep-main", size=5)
    ended = fates.ended(parent)
    assert ended["status"] == "FAILED"
    assert ended["arrayProperties"]["statusSummary"] == {"SUCCEEDED": 3, "FAILED": 2}
    assert _children(fates, parent, 5) == {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED", 3: "FAILED", 4: "SUCCEEDED"}
    assert fates.ended(f"{parent}:3")["container"]["exitCode"] == 3


def test_a_resubmitted_arrays_children_keep_their_original_indices(fates: Fates) -> None:
    some = fates.submit("sweep-main", recovery="-r1", size=3, environment={"BATCHDROP_CHILD_INDICES": "0,3-4"})
    ended = fates.ended(some)
    assert ended["status"] == "FAILED"
    assert _children(fates, some, 3) == {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED"}  # new index 1 was child 3
