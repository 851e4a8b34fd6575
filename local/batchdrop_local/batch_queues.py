"""BATCH QUEUE FRONTS AND FLEET SIZE. moto has no GetJobQueueSnapshot, and its compute environments
never scale (UpdateComputeEnvironment drops `desiredvCpus`): a stuck job's advice could not tell where it
stands. The local Batch knows both, and tells the emulator through ordinary AWS calls:

- a job that becomes RUNNABLE is tagged `local-batch:runnable-at` (epoch ms) and untagged when it leaves
  RUNNABLE; in the emulator's process, GetJobQueueSnapshot lists a queue's tagged jobs in that order
  (the first 100, each with the time it became RUNNABLE as its `earliestTimeAtPosition`), as a FIFO
  queue's front;
- the vCPUs its queue's jobs want (those running and those waiting, up to the maximum) are set as the
  environment's `desiredvCpus` with UpdateComputeEnvironment, which the emulator then keeps and shows.

`LocalFleet` is the local Batch's side; `answer_queue_snapshots` patches moto in the emulator's process.
With `limit_vcpus`, a job starts only while its queue's environment has vCPUs left under its `maxvCpus`,
first come first served, so jobs wait in line behind others as they do on a full environment.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

RUNNABLE_AT = "local-batch:runnable-at"
SPOT_TYPES = {"SPOT", "FARGATE_SPOT"}
FRONT_OF_QUEUE = 100
_RUNNING = {"STARTING", "RUNNING"}


@dataclass
class _QueueFleet:
    environment: str
    """Its (first) compute environment's ARN."""
    max_vcpus: float
    spot: bool
    waiting: dict[str, float] = field(default_factory=dict)
    """RUNNABLE jobs, first come first: job id -> vCPUs."""
    running: dict[str, float] = field(default_factory=dict)
    desired: float | None = None


class LocalFleet:
    """Each queue's compute environment as the local Batch fills it: who waits, who runs, the vCPUs wanted."""

    def __init__(self, aws: Any, *, limit_vcpus: bool = False) -> None:
        self.aws = aws
        self.limit_vcpus = limit_vcpus
        self._queues: dict[str, _QueueFleet] = {}

    def of(self, queue: str) -> _QueueFleet:
        """The queue's (first) compute environment, as Batch describes it (asked once)."""
        if queue not in self._queues:
            batch = self.aws.client("batch")
            [described] = batch.describe_job_queues(jobQueues=[queue])["jobQueues"] or [{}]
            order = sorted(described.get("computeEnvironmentOrder", []), key=lambda each: each["order"])
            found = (
                batch.describe_compute_environments(computeEnvironments=[order[0]["computeEnvironment"]])[
                    "computeEnvironments"
                ]
                if order
                else []
            )
            resources = found[0].get("computeResources", {}) if found else {}
            self._queues[queue] = _QueueFleet(
                environment=found[0]["computeEnvironmentArn"] if found else "",
                max_vcpus=float(resources.get("maxvCpus", 0)) or float("inf"),
                spot=resources.get("type") in SPOT_TYPES,
            )
        return self._queues[queue]

    def may_start(self, view: dict[str, Any]) -> bool:
        """Whether a RUNNABLE job may start now: always, unless vCPUs are limited; then only the first in
        line of its queue, and only while its environment has its vCPUs left."""
        if not self.limit_vcpus:
            return True
        fleet = self.of(view["jobQueue"])
        first = next(iter(fleet.waiting), None)
        return first in {None, view["jobId"]} and sum(fleet.running.values()) + vcpus_of(view) <= fleet.max_vcpus

    def moved(self, view: dict[str, Any], status: str) -> None:
        """A job (not an array or its child) moved to `status`: its place in line, its vCPUs, its tag."""
        fleet, job_id = self.of(view["jobQueue"]), view["jobId"]
        batch = self.aws.client("batch")
        if status == "RUNNABLE" and job_id not in fleet.waiting:
            fleet.running.pop(job_id, None)  # a retried attempt waits again
            fleet.waiting[job_id] = vcpus_of(view)
            batch.tag_resource(resourceArn=view["jobArn"], tags={RUNNABLE_AT: str(int(time.time() * 1000))})
        elif status != "RUNNABLE" and job_id in fleet.waiting:
            vcpus = fleet.waiting.pop(job_id)
            batch.untag_resource(resourceArn=view["jobArn"], tagKeys=[RUNNABLE_AT])
            if status in _RUNNING:
                fleet.running[job_id] = vcpus
        elif status not in _RUNNING:
            fleet.running.pop(job_id, None)
        self._tell_desired(fleet)

    def _tell_desired(self, fleet: _QueueFleet) -> None:
        """The vCPUs the queue's jobs want, up to the maximum, as the environment's desiredvCpus."""
        wanted = min(fleet.max_vcpus, sum(fleet.running.values()) + sum(fleet.waiting.values()))
        if wanted == fleet.desired or not fleet.environment:
            return
        fleet.desired = wanted
        self.aws.client("batch").update_compute_environment(
            computeEnvironment=fleet.environment, computeResources={"desiredvCpus": int(wanted)}
        )


def vcpus_of(view: dict[str, Any]) -> float:
    """The vCPUs a job asked for, as Batch shows its request."""
    for requirement in view.get("container", {}).get("resourceRequirements", []):
        if requirement["type"] == "VCPU":
            return float(requirement["value"])
    return float(view.get("container", {}).get("vcpus", 1))


def answer_queue_snapshots() -> None:
    """In the emulator's process: GetJobQueueSnapshot answered from the jobs the local Batch tagged as
    RUNNABLE, and UpdateComputeEnvironment's `desiredvCpus` kept and shown. Called again, it changes nothing."""
    from moto.batch import urls  # noqa: PLC0415  # only the emulator's process loads moto
    from moto.batch.exceptions import ClientException  # noqa: PLC0415
    from moto.batch.models import BatchBackend  # noqa: PLC0415
    from moto.batch.responses import BatchResponse  # noqa: PLC0415

    if hasattr(BatchResponse, "getjobqueuesnapshot"):
        return
    urls.url_paths["{0}/v1/getjobqueuesnapshot$"] = BatchResponse.dispatch
    update = BatchBackend.update_compute_environment

    def getjobqueuesnapshot(self: Any) -> str:
        queue = self.batch_backend.get_job_queue(self._get_param("jobQueue"))
        if queue is None:
            raise ClientException(f"job queue {self._get_param('jobQueue')} does not exist")
        front = []
        for job in queue.jobs:
            since = self.batch_backend.list_tags_for_resource(job.arn).get(RUNNABLE_AT)
            if since is not None:
                front.append({"jobArn": job.arn, "earliestTimeAtPosition": int(since)})
        front.sort(key=lambda each: each["earliestTimeAtPosition"])
        now = int(time.time() * 1000)
        return json.dumps({"frontOfQueue": {"jobs": front[:FRONT_OF_QUEUE], "lastUpdatedAt": now}})

    def update_compute_environment(
        self: Any, compute_environment_name: str, state: Any, compute_resources: Any, service_role: Any
    ) -> tuple[str, str]:
        name, arn = update(self, compute_environment_name, state, compute_resources, service_role)
        if compute_resources and "desiredvCpus" in compute_resources:
            environment = self.get_compute_environment(compute_environment_name)
            environment.compute_resources["desiredvCpus"] = int(compute_resources["desiredvCpus"])
        return name, arn

    BatchResponse.getjobqueuesnapshot = getjobqueuesnapshot  # type: ignore[attr-defined]
    BatchBackend.update_compute_environment = update_compute_environment  # type: ignore[method-assign]
