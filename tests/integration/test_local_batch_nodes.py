"""The local Batch plays a multi-node parallel job as Batch tells it (docs/multinode.md): its nodes' own
events, `<job id>#<node index>` with `nodeDetails` and each node's log stream, the job itself with its
`nodeProperties` (the request's node count, not the definition's), and its end its main node's; a fate
fails one node, and the main node with it. Read from the "Batch Job State Change" events it sent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from batchdrop_local.batch_lifecycle import JobFate, LocalBatch, Scenario

from batchdrop.platform.config import parse_platform_config
from batchdrop.store.items import active_shard
from tests.conftest import EXAMPLES
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

RUN = "nodesrunabcdefghijklm"
SCENARIO = Scenario(
    fates=[JobFate(spec="broken", outcome="fail", exit_code=2, fail_node=2)],
    seconds={"queued": 0.05, "starting": 0.05, "running": 0.1, "child": 0.05},
)


class Nodes:
    def __init__(self, stack: LocalStack, probe: str, definition: str, queue: str) -> None:
        self.stack, self.probe, self.definition, self.queue = stack, probe, definition, queue
        self.events: list[dict[str, Any]] = []

    def submit(self, name: str, nodes: int) -> str:
        """SubmitJob as batchdrop sends a multi-node job, and its record as batchdrop writes it."""
        overrides = {
            "command": ["torchrun", "train.py"],
            "resourceRequirements": [{"type": "VCPU", "value": "8"}, {"type": "MEMORY", "value": "16384"}],
        }
        job_id: str = self.stack.client("batch").submit_job(
            jobName=f"{name}-main-{RUN}",
            jobQueue=self.queue,
            jobDefinition=self.definition,
            nodeOverrides={
                "numNodes": nodes,
                "nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": overrides}],
            },
            tags={"batchdrop:run-id": RUN, "batchdrop:step": "main"},
        )["jobId"]
        self.stack.client("dynamodb").put_item(
            TableName=self.stack.table,
            Item={
                "PK": {"S": f"JOB#{job_id}"},
                "SK": {"S": "JOB"},
                "GSI1PK": {"S": active_shard(job_id)},
                "GSI1SK": {"S": f"0#{job_id}"},
                "job_id": {"S": job_id},
                "resources": {"M": {"vcpus": {"N": "8"}, "memory_mib": {"N": "16384"}}},
                "max_attempts": {"N": "1"},
                "nodes": {"N": str(nodes)},
            },
        )
        return job_id

    def ended(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ends = [event for event in self.of(job_id) if event["status"] in {"SUCCEEDED", "FAILED"}]
            if ends:
                self._receive()  # the nodes' ends were sent before it: take what is left
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
def nodes(local_stack: LocalStack) -> Iterator[Nodes]:
    """The stack's queues and definitions (the example config's: vision's `ddp` registered multi-node), the
    local Batch following them, and every Batch event copied into a probe queue."""
    config = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())  # the stack's, provisioned
    sqs = local_stack.client("sqs")
    probe = sqs.create_queue(QueueName="batch-node-events-probe")["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = local_stack.client("events")
    events.put_rule(Name="batch-node-events-probe", EventPattern=json.dumps({"source": ["aws.batch"]}))
    events.put_targets(Rule="batch-node-events-probe", Targets=[{"Id": "probe", "Arn": probe_arn}])
    queue = config.queues["gpu-on-demand"].arn
    batch = LocalBatch(
        local_stack.aws, queues=[queue], table=local_stack.table, scenario=SCENARIO, interval=0.02
    ).start()
    try:
        yield Nodes(local_stack, probe, config.teams["vision"].job_definitions["ddp"], queue)
    finally:
        batch.stop()


def test_the_multinode_definition_is_registered_as_one(nodes: Nodes) -> None:
    [definition] = nodes.stack.client("batch").describe_job_definitions(jobDefinitions=[nodes.definition])[
        "jobDefinitions"
    ]
    assert definition["type"] == "multinode"


def test_a_four_node_job_tells_each_nodes_run_and_end_then_its_own(nodes: Nodes) -> None:
    job_id = nodes.submit("ddp", 4)
    ended = nodes.ended(job_id)
    assert ended["status"] == "SUCCEEDED"
    assert ended["nodeProperties"]["numNodes"] == 4
    assert {"type": "VCPU", "value": "8"} in ended["nodeProperties"]["nodeRangeProperties"][0]["container"][
        "resourceRequirements"
    ]
    assert "container" not in ended
    for index in range(4):
        statuses = [event["status"] for event in nodes.of(f"{job_id}#{index}")]
        assert statuses == ["RUNNING", "SUCCEEDED"], index
        [end] = [event for event in nodes.of(f"{job_id}#{index}") if event["status"] == "SUCCEEDED"]
        assert end["nodeDetails"] == {"nodeIndex": index, "isMainNode": index == 0}
        assert end["container"]["exitCode"] == 0
        assert end["container"]["logStreamName"].startswith("vision-ddp/default/")
    streams = {event["container"]["logStreamName"] for index in range(4) for event in nodes.of(f"{job_id}#{index}")}
    assert len(streams) == 4, "each node logs to its own stream"
    assert ended["attempts"][0]["container"]["logStreamName"] in streams, "the job's log is its main node's"


def test_a_failing_node_takes_the_main_node_and_the_job_down(nodes: Nodes) -> None:
    job_id = nodes.submit("broken", 3)
    ended = nodes.ended(job_id)
    assert ended["status"] == "FAILED"
    codes = {}
    for index in range(3):
        [end] = [event for event in nodes.of(f"{job_id}#{index}") if event["status"] in {"SUCCEEDED", "FAILED"}]
        codes[index] = (end["status"], end["container"]["exitCode"])
    assert codes == {0: ("FAILED", 1), 1: ("SUCCEEDED", 0), 2: ("FAILED", 2)}
    assert ended["attempts"][0]["container"]["exitCode"] == 1
