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

`LocalBatch` runs the lifecycle (jobs found, moved, attempts ended, stops honoured); its parts are
`batch_jobs` (the jobs it keeps, their pace and attempts), `batch_output` (the events and log lines
it writes), `batch_nodes` (multi-node jobs' nodes) and `batch_arrays` (arrays' children).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from batchdrop.store.items import ACTIVE_SHARDS
from batchdrop_local import bridges
from batchdrop_local.batch_arrays import ArrayChildren
from batchdrop_local.batch_fates import JobFate, Scenario, memory_mib, retried, spec_and_step
from batchdrop_local.batch_jobs import LocalJob, Pace, attempt_record
from batchdrop_local.batch_nodes import MultiNodeJobs, node_view
from batchdrop_local.batch_output import BatchOutput
from batchdrop_local.batch_queues import LocalFleet
from batchdrop_local.state_changes import as_batch_shows_it, log_stream, state_change

logger = logging.getLogger(__name__)

RECLAIMED = "Host EC2 (instance i-0bd1e2f3a4b5c6d7e) terminated."
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"

__all__ = ["JobFate", "LocalBatch", "Scenario"]


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
        self.jobs: dict[str, LocalJob] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reclaimed: dict[tuple[str, str, int | None], int] = {}
        """Attempts reclaimed so far, by spec, step and original child index (over every job of them)."""
        self.fleet = LocalFleet(aws, limit_vcpus=limit_vcpus)
        self.pace = Pace(scenario, speed)
        self.output = BatchOutput(aws)
        self.nodes = MultiNodeJobs(self.output)
        self.arrays = ArrayChildren(
            pace=self.pace, parallel=parallel_children, move=self._move, finish_attempt=self._finish_attempt
        )

    @property
    def events_sent(self) -> int:
        """Events EventBridge took (PutEvents' failed entries not counted)."""
        return self.output.events_sent

    def start(self) -> LocalBatch:
        self._thread = threading.Thread(target=self._run, name="local-batch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

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
                self.output.flush()
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
        job = LocalJob(
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

    def _advance(self, job: LocalJob, now: float) -> None:
        if job.ended or now < job.next_at:
            return
        if job.status == "SUBMITTED":
            self._move(job, "PENDING", after=self.pace.seconds("queued"))
        elif job.status == "PENDING":
            upstream = [self.jobs.get(job_id) for job_id in job.depends_on]
            if any(dependency is not None and dependency.status == "FAILED" for dependency in upstream):
                self._move(job, "FAILED", reason="Dependent Job failed")
            elif all(dependency is not None and dependency.status == "SUCCEEDED" for dependency in upstream):
                if job.array_size:
                    self.arrays.start(job)
                else:
                    self._move(job, "RUNNABLE", after=self.pace.seconds("queued"))
        elif job.array_size:
            self.arrays.advance(job, now)
        elif job.status == "RUNNABLE":
            if self.fleet.may_start(job.view):
                self._move(job, "STARTING", after=self.pace.seconds("starting"))
        elif job.status == "STARTING":
            job.started_at = datetime.now(UTC)
            running = job.fate.runs_for / self.speed if job.fate.runs_for is not None else self.pace.seconds("running")
            self._move(job, "RUNNING", after=running)
            if job.nodes:
                self.nodes.running(job, at=job.started_at)
            else:
                self.output.write_logs(job, "started")
        elif job.status == "RUNNING":
            self._finish_attempt(job)

    def _finish_attempt(self, job: LocalJob) -> None:
        number = len(job.attempts) + 1
        outcome = self._outcome(job)
        if job.nodes:  # the main node's end (its exit code and log stream) is the job's
            code = self.nodes.finish(job, outcome)
            main = {"exitCode": code, "logStreamName": log_stream(node_view(job, 0), number)}
            job.attempts.append({**attempt_record(job, exit_code=code), "container": main})
            if not code:
                self._move(job, "SUCCEEDED", reason="Essential container in task exited", exit_code=0)
                return
        elif outcome == "spot_reclaim":
            job.attempts.append(attempt_record(job, exit_code=None, status_reason=RECLAIMED))
            self.output.write_logs(job, "the instance was reclaimed", attempt=number)
        elif outcome in {"fail", "out_of_memory"}:
            code = 137 if outcome == "out_of_memory" else job.fate.exit_code
            reason = OUT_OF_MEMORY if code == 137 else None
            job.attempts.append(attempt_record(job, exit_code=code, container_reason=reason))
            self.output.write_logs(job, f"exited with code {code}", attempt=number)
        else:
            job.attempts.append(attempt_record(job, exit_code=0))
            self.output.write_logs(job, "done", attempt=number)
            self._move(job, "SUCCEEDED", reason="Essential container in task exited", exit_code=0)
            return
        last = job.attempts[-1]
        if retried(job.retry_strategy, len(job.attempts), last):
            if job.child_index is not None:  # a child tells only how it ends
                job.status, job.next_at = "PENDING", time.monotonic() + self.pace.seconds("queued")
            else:
                self._move(job, "RUNNABLE", after=self.pace.seconds("queued"))
            return
        self._move(job, "FAILED", reason=last["statusReason"], exit_code=last["container"].get("exitCode"))

    def _outcome(self, job: LocalJob) -> str:
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

    def _move(
        self, job: LocalJob, status: str, *, after: float = 0.0, reason: str | None = None, exit_code: int | None = None
    ) -> None:
        job.status = status
        job.next_at = time.monotonic() + after
        if job.child_index is None and not job.array_size:  # an array's place is its children's
            self.fleet.moved(job.view, status)
        self.output.publish(
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

    def _stop_job(self, job: LocalJob, reason: str) -> None:
        if job.children:
            for child in job.children:
                if not child.ended:
                    self._stop_job(child, reason)
            self.arrays.summarized(job, "FAILED", reason=reason)
            return
        if job.status in {"STARTING", "RUNNING"}:
            job.attempts.append(attempt_record(job, exit_code=143, status_reason=reason))
            self.output.write_logs(job, "terminated (SIGTERM)", attempt=len(job.attempts))
            self._move(job, "FAILED", reason=reason, exit_code=143)
        else:
            self._move(job, "FAILED", reason=reason)
