"""BATCH JOB STATE CHANGES. moto's Batch (without Docker) finishes every job the moment it is
submitted and sends no events; AWS Batch takes jobs through PENDING, RUNNABLE, STARTING and
RUNNING over minutes and tells EventBridge at each step (an array's children tell only how they
end here: the emulator moves some hundred events a second). `LocalBatch` follows the jobs submitted
to the emulator and plays that lifecycle: it publishes real-shaped "Batch Job State Change"
events with `PutEvents` (the template's rules route them into the tracking queue), with attempts,
log streams (and log lines in CloudWatch Logs), exit codes, dependencies, array children and
retries (by the job's own retryStrategy, as Batch decides them: `batch_fates`); which job fails,
runs out of memory (below a memory it asks for) or is reclaimed (on spot capacity only, so many
times per spec and step), and which children of an array fail, is said by a scenario, never by
the specs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchdrop.store.items import ACTIVE_SHARDS
from batchdrop_local import bridges
from batchdrop_local.batch_fates import (
    JobFate,
    Scenario,
    ScenarioError,
    memory_mib,
    original_indices,
    retried,
    spec_and_step,
)
from batchdrop_local.batch_queues import LocalFleet
from batchdrop_local.state_changes import as_batch_shows_it, epoch_ms, log_stream, state_change

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/batch/job"
ECS = "arn:aws:ecs:us-east-1:123456789012"
RECLAIMED = "Host EC2 (instance i-0bd1e2f3a4b5c6d7e) terminated."
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"

__all__ = ["JobFate", "LocalBatch", "Scenario"]


@dataclass
class _Job:
    view: dict[str, Any]
    """The job as Batch shows it (its events' detail)."""
    fate: JobFate
    depends_on: list[str]
    array_size: int | None
    status: str = "SUBMITTED"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_at: float = 0.0
    started_at: datetime | None = None
    children: list[_Job] = field(default_factory=list)
    retry_strategy: dict[str, Any] = field(default_factory=dict)
    """As submitted (`attempts`, `evaluateOnExit`): how Batch retries a failed attempt."""
    child_index: int | None = None
    """For an array child: its original index (the index it had before any resubmission)."""
    memory_mib: int | None = None
    """The memory it asked for (its request's override, else its job definition's)."""
    nodes: int | None = None
    """A multi-node parallel job's nodes: each tells its own events, `<job id>#<node index>`."""

    @property
    def ended(self) -> bool:
        return self.status in {"SUCCEEDED", "FAILED"}


class LocalBatch:
    def __init__(
        self,
        aws: Any,
        *,
        queues: list[str],
        table: str,
        scenario: Scenario,
        speed: float = 1.0,
        interval: float = 0.1,
        parallel_children: int = 250,
        limit_vcpus: bool = False,
    ) -> None:
        """`limit_vcpus`: jobs start only while their queue's environment has vCPUs left (`batch_queues`)."""
        self.aws = aws
        self.queues = queues
        self.table = table
        self.scenario = scenario
        self.speed = speed
        self.interval = interval
        self.parallel_children = parallel_children
        self.jobs: dict[str, _Job] = {}
        self.events_sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: list[dict[str, Any]] = []
        self._reclaimed: dict[tuple[str, str, int | None], int] = {}
        """Attempts reclaimed so far, by spec, step and original child index (over every job of them)."""
        self.fleet = LocalFleet(aws, limit_vcpus=limit_vcpus)
        aws.client("logs").create_log_group(logGroupName=LOG_GROUP)

    def start(self) -> LocalBatch:
        self._thread = threading.Thread(target=self._run, name="local-batch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _seconds(self, phase: str) -> float:
        defaults = {"queued": 1.0, "starting": 1.0, "running": 4.0, "child": 1.5}
        return self.scenario.seconds.get(phase, defaults[phase]) / self.speed

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            try:
                if ticks % 10 == 0:  # once a second: a listing of 1,000 children is not free
                    self._discover()
                    self._honour_stop_requests()
                ticks += 1
                now = time.monotonic()
                for job in list(self.jobs.values()):
                    self._advance(job, now)
                self._flush()
            except Exception:  # the emulator shutting down, say: the next tick tries again
                logger.exception("local Batch tick failed")

    # ------------------------------------------------------------------ jobs appear

    def _discover(self) -> None:
        """BATCH JOB DISCOVERY. moto's ListJobs answers with every array child in full (1,000 summaries
        for one sweep), every time; listing each queue every second would be most of the emulator's
        work. The jobs submitted are recorded by batchdrop as they are submitted, so their ids are
        taken from the records' watchdog index (jobs not yet finished); what each job is, is still
        asked of Batch (DescribeJobs).
        """
        dynamodb = self.aws.client("dynamodb")
        new: list[str] = []
        for shard in range(ACTIVE_SHARDS):
            pages = dynamodb.get_paginator("query").paginate(
                TableName=self.table,
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :shard",
                ExpressionAttributeValues={":shard": {"S": f"ACTIVE#{shard}"}},
                ProjectionExpression="job_id",
            )
            for page in pages:
                new += [item["job_id"]["S"] for item in page.get("Items", []) if item["job_id"]["S"] not in self.jobs]
        batch = self.aws.client("batch")
        for start in range(0, len(new), 100):
            for described in batch.describe_jobs(jobs=new[start : start + 100])["jobs"]:
                self._adopt(described)

    def _adopt(self, described: dict[str, Any]) -> None:
        asked = bridges.requested(self.aws, self.table, described["jobId"])
        if asked is None:
            return  # not recorded yet (its run is being submitted): seen again on the next tick
        resources, max_attempts, nodes = asked
        view = as_batch_shows_it(described, resources)
        if nodes:  # a multi-node job shows its node range, with the request's overrides, not a container
            view.pop("nodeProperties", None)
            container = view.pop("container")
            view["nodeProperties"] = {
                "numNodes": nodes,
                "mainNode": 0,
                "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
            }
        spec, step = spec_and_step(described)
        size = described.get("arrayProperties", {}).get("size")
        if size:
            view["arrayProperties"] = {"size": size, "statusSummary": {}}
        job = _Job(
            view=view,
            fate=self.scenario.fate(spec, step),
            depends_on=[dependency["jobId"] for dependency in described.get("dependsOn", [])],
            array_size=size,
            next_at=time.monotonic(),
            retry_strategy=described.get("retryStrategy") or {"attempts": max_attempts},
            memory_mib=memory_mib(described) or memory_mib(view),
            nodes=nodes,
        )
        self.jobs[described["jobId"]] = job

    # ------------------------------------------------------------------ jobs move

    def _advance(self, job: _Job, now: float) -> None:
        if job.ended or now < job.next_at:
            return
        if job.status == "SUBMITTED":
            self._move(job, "PENDING", after=self._seconds("queued"))
        elif job.status == "PENDING":
            upstream = [self.jobs.get(job_id) for job_id in job.depends_on]
            if any(dependency is not None and dependency.status == "FAILED" for dependency in upstream):
                self._move(job, "FAILED", reason="Dependent Job failed")
            elif all(dependency is not None and dependency.status == "SUCCEEDED" for dependency in upstream):
                if job.array_size:
                    self._start_children(job)
                else:
                    self._move(job, "RUNNABLE", after=self._seconds("queued"))
        elif job.array_size:
            self._advance_array(job, now)
        elif job.status == "RUNNABLE":
            if self.fleet.may_start(job.view):
                self._move(job, "STARTING", after=self._seconds("starting"))
        elif job.status == "STARTING":
            job.started_at = datetime.now(UTC)
            running = job.fate.runs_for / self.speed if job.fate.runs_for is not None else self._seconds("running")
            self._move(job, "RUNNING", after=running)
            if job.nodes:
                for index in range(job.nodes):
                    self._publish(state_change(self._node_view(job, index), "RUNNING", at=job.started_at))
            else:
                self._write_logs(job, "started")
        elif job.status == "RUNNING":
            self._finish_attempt(job)

    # ------------------------------------------------------------------ multi-node jobs

    def _node_view(self, job: _Job, index: int) -> dict[str, Any]:
        """Node `index` of a multi-node job, as Batch shows it: a job `<id>#<index>` with `nodeDetails` and
        its node range's container."""
        view = {key: value for key, value in job.view.items() if key != "nodeProperties"}
        container = job.view["nodeProperties"]["nodeRangeProperties"][0]["container"]
        return {
            **view,
            "jobId": f"{job.view['jobId']}#{index}",
            "jobArn": f"{job.view['jobArn']}#{index}",
            "nodeDetails": {"nodeIndex": index, "isMainNode": index == 0},
            "container": dict(container),
        }

    def _finish_nodes(self, job: _Job, outcome: str) -> int:
        """Every node's end, told as its own event with its log; the main node's exit code, returned, is
        the job's. A failing node that is not the main node takes the main node down (exit 1)."""
        assert job.nodes is not None
        failing = (job.fate.fail_node or 0) if outcome == "fail" else None
        number = len(job.attempts) + 1
        main_code = 0
        for index in range(job.nodes):
            code = job.fate.exit_code if index == failing else 1 if index == 0 and failing is not None else 0
            main_code = code if index == 0 else main_code
            node = _Job(view=self._node_view(job, index), fate=job.fate, depends_on=[], array_size=None)
            node.started_at = job.started_at
            node.attempts = [dict(attempt) for attempt in job.attempts]
            self._write_logs(node, "started")
            self._write_logs(node, f"exited with code {code}" if code else "done", attempt=number)
            node.attempts.append(self._attempt(node, exit_code=code))
            status = "FAILED" if code else "SUCCEEDED"
            self._publish(
                state_change(
                    node.view,
                    status,
                    at=datetime.now(UTC),
                    attempts=node.attempts,
                    reason="Essential container in task exited",
                    exit_code=code,
                )
            )
        return main_code

    def _finish_attempt(self, job: _Job) -> None:
        number = len(job.attempts) + 1
        outcome = self._outcome(job)
        if job.nodes:  # the main node's end (its exit code and log stream) is the job's
            code = self._finish_nodes(job, outcome)
            main = {"exitCode": code, "logStreamName": log_stream(self._node_view(job, 0), number)}
            job.attempts.append({**self._attempt(job, exit_code=code), "container": main})
            if not code:
                self._move(job, "SUCCEEDED", reason="Essential container in task exited", exit_code=0)
                return
        elif outcome == "spot_reclaim":
            job.attempts.append(self._attempt(job, exit_code=None, status_reason=RECLAIMED))
            self._write_logs(job, "the instance was reclaimed", attempt=number)
        elif outcome in {"fail", "out_of_memory"}:
            code = 137 if outcome == "out_of_memory" else job.fate.exit_code
            reason = OUT_OF_MEMORY if code == 137 else None
            job.attempts.append(self._attempt(job, exit_code=code, container_reason=reason))
            self._write_logs(job, f"exited with code {code}", attempt=number)
        else:
            job.attempts.append(self._attempt(job, exit_code=0))
            self._write_logs(job, "done", attempt=number)
            self._move(job, "SUCCEEDED", reason="Essential container in task exited", exit_code=0)
            return
        last = job.attempts[-1]
        if retried(job.retry_strategy, len(job.attempts), last):
            if job.child_index is not None:  # a child tells only how it ends
                job.status, job.next_at = "PENDING", time.monotonic() + self._seconds("queued")
            else:
                self._move(job, "RUNNABLE", after=self._seconds("queued"))
            return
        self._move(job, "FAILED", reason=last["statusReason"], exit_code=last["container"].get("exitCode"))

    def _outcome(self, job: _Job) -> str:
        """This attempt's outcome: the fate's, where what the job asked for and where it runs let it be."""
        fate = job.fate
        outcome = fate.outcome_of(job.child_index)
        enough = fate.below_memory_mib is not None and (job.memory_mib or 0) >= fate.below_memory_mib
        if outcome == "out_of_memory" and enough:
            return "succeed"
        if outcome == "spot_reclaim":
            key = (fate.spec, fate.step, job.child_index)
            if not self._on_spot(job.view["jobQueue"]) or self._reclaimed.get(key, 0) >= fate.times:
                return "succeed"
            self._reclaimed[key] = self._reclaimed.get(key, 0) + 1
        return outcome

    def _on_spot(self, queue: str) -> bool:
        """Whether the queue's (first) compute environment is spot capacity, as Batch describes it."""
        return self.fleet.of(queue).spot

    def _attempt(
        self, job: _Job, *, exit_code: int | None, status_reason: str | None = None, container_reason: str | None = None
    ) -> dict[str, Any]:
        started = job.started_at or datetime.now(UTC)
        return {
            "container": {
                "containerInstanceArn": f"{ECS}:container-instance/local/{uuid.uuid4().hex}",
                "taskArn": f"{ECS}:task/local/{uuid.uuid4().hex}",
                **({"exitCode": exit_code} if exit_code is not None else {}),
                **({"reason": container_reason} if container_reason else {}),
                "logStreamName": log_stream(job.view, len(job.attempts) + 1),
                "networkInterfaces": [],
            },
            "startedAt": epoch_ms(started),
            "stoppedAt": epoch_ms(datetime.now(UTC)),
            "statusReason": status_reason or "Essential container in task exited",
        }

    def _move(
        self, job: _Job, status: str, *, after: float = 0.0, reason: str | None = None, exit_code: int | None = None
    ) -> None:
        job.status = status
        job.next_at = time.monotonic() + after
        if job.child_index is None and not job.array_size:  # an array's place is its children's
            self.fleet.moved(job.view, status)
        self._publish(
            state_change(
                job.view, status, at=datetime.now(UTC), attempts=job.attempts, reason=reason, exit_code=exit_code
            )
        )

    # ------------------------------------------------------------------ cancel and terminate

    def _honour_stop_requests(self) -> None:
        """A TerminateJob shows as the job's statusReason in moto (its jobs have all finished
        there); the job stops as Batch stops it: FAILED with that reason, killed if it had started."""
        unfinished = [job_id for job_id, job in self.jobs.items() if not job.ended]
        batch = self.aws.client("batch")
        for start in range(0, len(unfinished), 100):
            for described in batch.describe_jobs(jobs=unfinished[start : start + 100])["jobs"]:
                reason = described.get("statusReason")
                if reason:
                    self._stop_job(self.jobs[described["jobId"]], reason)

    def _stop_job(self, job: _Job, reason: str) -> None:
        if job.children:
            for child in job.children:
                if not child.ended:
                    self._stop_job(child, reason)
            self._summarized(job, "FAILED", reason=reason)
            return
        if job.status in {"STARTING", "RUNNING"}:
            job.attempts.append(self._attempt(job, exit_code=143, status_reason=reason))
            self._write_logs(job, "terminated (SIGTERM)", attempt=len(job.attempts))
            self._move(job, "FAILED", reason=reason, exit_code=143)
        else:
            self._move(job, "FAILED", reason=reason)

    # ------------------------------------------------------------------ arrays

    def _start_children(self, parent: _Job) -> None:
        assert parent.array_size is not None
        try:
            indices = original_indices(parent.view, parent.array_size)
        except ScenarioError as error:
            logger.warning("job %s: %s; its children are taken as the originals", parent.view["jobId"], error)
            indices = list(range(parent.array_size))
        parent.children = [
            _Job(
                view={
                    **parent.view,
                    "jobId": f"{parent.view['jobId']}:{index}",
                    "arrayProperties": {"index": index},
                    "jobArn": f"{parent.view['jobArn']}:{index}",
                },
                fate=parent.fate,
                depends_on=[],
                array_size=None,
                status="PENDING",
                retry_strategy=parent.retry_strategy,
                memory_mib=parent.memory_mib,
                child_index=indices[index],
            )
            for index in range(parent.array_size)
        ]
        parent.status = "RUNNABLE"  # the parent itself says nothing until a child runs

    def _advance_array(self, parent: _Job, now: float) -> None:
        running = sum(1 for child in parent.children if child.status == "RUNNING")
        for child in parent.children:
            if child.ended or now < child.next_at:
                continue
            if child.status == "PENDING":
                if running >= self.parallel_children:
                    continue
                running += 1
                child.started_at = datetime.now(UTC)
                child.status, child.next_at = "RUNNING", now + self._seconds("child")
                # Each child tells only how it ended: Batch also tells RUNNABLE and RUNNING, but a
                # thousand children's every step is more than the emulator moves in a minute.
                if parent.status != "RUNNING":
                    self._summarized(parent, "RUNNING")
            elif child.status == "RUNNING":
                self._finish_attempt(child)
        if all(child.ended for child in parent.children):
            failed = any(child.status == "FAILED" for child in parent.children)
            self._summarized(
                parent, "FAILED" if failed else "SUCCEEDED", reason="Array Child Job failed" if failed else None
            )

    def _summarized(self, parent: _Job, status: str, reason: str | None = None) -> None:
        summary: dict[str, int] = {}
        for child in parent.children:
            summary[child.status] = summary.get(child.status, 0) + 1
        parent.view["arrayProperties"] = {"size": parent.array_size, "statusSummary": summary}
        self._move(parent, status, reason=reason)

    # ------------------------------------------------------------------ telling EventBridge

    def _publish(self, event: dict[str, Any]) -> None:
        self._outbox.append(event)

    def _flush(self) -> None:
        events = self.aws.client("events")
        while self._outbox:
            chunk, self._outbox = self._outbox[:10], self._outbox[10:]
            entries = [
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                    "Time": datetime.now(UTC),
                }
                for event in chunk
            ]
            response = events.put_events(Entries=entries)
            self.events_sent += len(entries) - int(response.get("FailedEntryCount", 0))

    def _write_logs(self, job: _Job, what: str, attempt: int | None = None) -> None:
        if ":" in job.view["jobId"]:
            return  # children's logs would be thousands of streams; their parent's story is told
        logs = self.aws.client("logs")
        stream = log_stream(job.view, attempt or len(job.attempts) + 1)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        now = epoch_ms(datetime.now(UTC))
        lines = list(_story(job, what))
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now + index, "message": line} for index, line in enumerate(lines)],
        )


def _story(job: _Job, what: str) -> Iterator[str]:
    command = " ".join(job.view.get("container", {}).get("command", [])) or "the job definition's command"
    if what == "started":
        yield f"batchdrop local Batch: starting {command}"
        yield "loading data... 12,400 samples"
        return
    for epoch in range(1, 4):
        yield f"epoch {epoch}/3 loss={1.0 / epoch:.3f}"
    yield f"batchdrop local Batch: {what}"
