"""Runs as their records stand, for the report's tests (unit and browser): a pipeline with a retried
step, a recovery and a reused step; a 1,000-child sweep with failures; a rejected run; a run still going."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from batchdrop.errors import Problem
from batchdrop.events.contract import LogLink, Usage
from batchdrop.platform.recovery import RecoveryCounts, RecoveryDue
from batchdrop.spec.model import Resources
from batchdrop.store.child_states import run_time_bucket
from batchdrop.store.items import Children
from batchdrop.store.records import AttemptEnd, JobRecord, RunRecord, SpecSource, SubmittedJobRef, Transition

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=3)
SOURCE = SpecSource(bucket="jobs-bucket", key="incoming/vision/resnet/train.yaml", version_id="v3", etag="abc123")


@dataclass
class Scenario:
    run: RunRecord
    jobs: list[JobRecord]
    children: dict[str, Children] = field(default_factory=dict)
    now: datetime = NOW

    @property
    def bar_labels(self) -> list[str]:
        """The timeline's bars the records call for: a row per attempt of each job run here."""
        return [
            f"{job.step} · attempt {attempt}"
            for job in self.jobs
            if not any(ref.reused_from and ref.job_id == job.job_id for ref in self.run.jobs)
            for attempt in range(1, max(job.attempts, 1) + 1)
        ]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def history(*entries: tuple[str, float, int]) -> dict[str, Transition]:
    found = [Transition(status=status, at=at(minute), attempt=attempt) for status, minute, attempt in entries]
    return {transition.key: transition for transition in found}


def log(job_id: str, attempt: int) -> LogLink:
    stream = f"resnet/default/{job_id}-{attempt}"
    return LogLink(
        attempt=attempt,
        log_group="/aws/batch/job",
        log_stream=stream,
        url=f"https://console.aws.amazon.com/cloudwatch/home#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/{stream}",
    )


def job(job_id: str, step: str, **fields: Any) -> JobRecord:
    values: dict[str, Any] = {
        "job_id": job_id,
        "run_id": "run-pipeline",
        "team": "vision",
        "environment": "prod",
        "spec_name": "resnet-train",
        "step": step,
        "job_name": f"bd-{step}",
        "queue": "cpu-spot",
        "queue_arn": "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-spot",
        "hardware": "cpu",
        "job_definition": "python-job",
        "job_definition_arn": "arn:aws:batch:us-east-1:123456789012:job-definition/python-job:1",
        "resources": Resources(vcpus=4, memory_mib=16384),
        "submitted_at": at(0),
        "last_event_at": at(0),
        "spec_digest": "0" * 64,
        "source": SOURCE,
    }
    values.update(fields)
    return JobRecord(**values)


def run(run_id: str, **fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": run_id,
        "team": "vision",
        "status": "succeeded",
        "source": SOURCE,
        "received_at": at(0),
        "claim_owner": "message-1",
        "claimed_at": at(0),
        "dropped_by": "AWS:AROAEXAMPLE:ada@example.com",
        "environment": "prod",
        "spec_name": "resnet-train",
        "submitted_at": at(0.1),
    }
    values.update(fields)
    return RunRecord(**values)


def pipeline() -> Scenario:
    """prep reused from an earlier run; train's first job retried after a spot reclaim, then out of memory and
    recovered by a job with twice the memory; evaluate's first job (waiting on it) replaced too."""
    reclaimed = AttemptEnd(
        attempt=1,
        started_at=at(3),
        stopped_at=at(20),
        status_reason="Host EC2 (instance i-0abc) terminated.",
        failure_class="spot_reclaim",
        failure="the instance was reclaimed (spot interruption)",
    )
    out_of_memory = AttemptEnd(
        attempt=2,
        started_at=at(24),
        stopped_at=at(50),
        exit_code=137,
        reason="OutOfMemoryError: Container killed due to memory usage",
        failure_class="out_of_memory",
        failure="out of memory (exit code 137)",
    )
    due = RecoveryDue(
        number=1,
        kind="out_of_memory",
        memory_mib=32768,
        queue="cpu-spot",
        queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/cpu-spot",
        attempts=2,
        counts=RecoveryCounts(out_of_memory=1, spot_reclaims=1),
        words="ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)",
    )
    train_1 = job(
        "train-1",
        "train",
        status="FAILED",
        attempts=2,
        max_attempts=2,
        history=history(
            ("SUBMITTED", 0, 0),
            ("RUNNABLE", 1, 0),
            ("RUNNING", 3, 0),
            ("RUNNABLE", 20, 1),
            ("RUNNING", 24, 1),
            ("FAILED", 50, 2),
        ),
        attempt_ends=[reclaimed, out_of_memory],
        exit_code=137,
        failure_class="out_of_memory",
        failure="out of memory (exit code 137)",
        log_links=[log("train-1", 1), log("train-1", 2)],
        finished_at=at(50),
        usage=Usage(vcpu_hours=2.87, memory_gib_hours=11.47),
        recovery=due,
        recovered_by="train-2",
    )
    evaluate_1 = job(
        "evaluate-1",
        "evaluate",
        status="FAILED",
        depends_on=["train-1"],
        history=history(("SUBMITTED", 0, 0), ("PENDING", 0.2, 0), ("FAILED", 50.5, 0)),
        failure_class="dependency",
        failure="a job it depends on failed",
        finished_at=at(50.5),
        recovered_by="evaluate-2",
    )
    train_2 = job(
        "train-2",
        "train",
        status="SUCCEEDED",
        attempts=1,
        max_attempts=2,
        resources=Resources(vcpus=4, memory_mib=32768),
        submitted_at=at(51),
        history=history(("SUBMITTED", 51, 0), ("RUNNABLE", 52, 0), ("RUNNING", 55, 0), ("SUCCEEDED", 100, 1)),
        attempt_ends=[AttemptEnd(attempt=1, started_at=at(55), stopped_at=at(100), exit_code=0)],
        exit_code=0,
        log_links=[log("train-2", 1)],
        finished_at=at(100),
        usage=Usage(vcpu_hours=3.0, memory_gib_hours=24.0),
        recovers="train-1",
        recovery_story=[due.words],
    )
    evaluate_2 = job(
        "evaluate-2",
        "evaluate",
        status="SUCCEEDED",
        attempts=1,
        resources=Resources(vcpus=2, memory_mib=8192, gpus=1),
        queue="gpu-shared",
        hardware="gpu",
        submitted_at=at(51),
        depends_on=["train-2"],
        history=history(
            ("SUBMITTED", 51, 0),
            ("PENDING", 51.2, 0),
            ("RUNNABLE", 100.5, 0),
            ("RUNNING", 104, 0),
            ("SUCCEEDED", 115, 1),
        ),
        attempt_ends=[AttemptEnd(attempt=1, started_at=at(104), stopped_at=at(115), exit_code=0)],
        exit_code=0,
        log_links=[log("evaluate-2", 1)],
        finished_at=at(115),
        usage=Usage(vcpu_hours=0.37, gpu_hours=0.18, memory_gib_hours=1.47),
        recovers="evaluate-1",
    )
    prep = job("prep-0", "prep", run_id="run-earlier", status="SUCCEEDED", attempts=1, finished_at=at(-60))
    record = run(
        "run-pipeline",
        finished_at=at(115),
        resumes="run-earlier",
        jobs=[
            SubmittedJobRef(
                step="prep",
                job_id="prep-0",
                job_name="bd-prep",
                queue="cpu-spot",
                hardware="cpu",
                reused_from="run-earlier",
            ),
            SubmittedJobRef.of(train_2, ["prep"]),
            SubmittedJobRef.of(evaluate_2, ["train"]),
        ],
    )
    return Scenario(run=record, jobs=[prep, train_1, evaluate_1, train_2, evaluate_2])


SWEEP_SIZE = 1_000
OUT_OF_MEMORY = range(100, 130)
"""Children out of memory on their first attempt."""
OTHER_FAILURES = range(990, 1000)
"""Children that failed twice for another reason."""
SWEEP = {
    "lr": ["0.1", "0.03", "0.01", "0.003", "0.001"],
    "batch": ["32", "64", "128", "256"],
    "seed": [str(seed) for seed in range(50)],
}
"""5 × 4 × 50 = 1,000 children: child 100 is lr=0.1 batch=128 seed=0."""


def child_seconds(index: int) -> float:
    """A child's last attempt's run time: most ran 3 to 8 minutes (a larger batch longer), the ones out of
    memory were killed within a minute, the other failures ran long."""
    if index in OUT_OF_MEMORY:
        return 20.0 + index % 40
    if index in OTHER_FAILURES:
        return 1_800.0 + 60 * (index % 10)
    return 180.0 + 75 * ((index // 50) % 4) + (index * 37) % 120


def sweep_run_times() -> dict[int, int]:
    """The histogram tracking would have kept of the sweep's 1,000 children (each counted at its end)."""
    run_times: dict[int, int] = {}
    for index in range(SWEEP_SIZE):
        bucket = run_time_bucket(child_seconds(index))
        run_times[bucket] = run_times.get(bucket, 0) + 1
    return dict(sorted(run_times.items()))


def child_log_stream(index: int) -> str:
    """The log stream Batch names for a child's task: `<job definition>/default/<task id>`."""
    return f"lr-sweep/default/{index:04d}" + "0" * 28


def sweep() -> Scenario:
    """A 1,000-child sweep (`SWEEP`): 960 succeeded (some after a retry), 30 out of memory, 10 failed otherwise;
    their run times as tracking keeps them (`child_seconds`)."""
    states = []
    for index in range(SWEEP_SIZE):
        if index in OUT_OF_MEMORY:
            states.append("17")
        elif index in OTHER_FAILURES:
            states.append("26")
        else:
            states.append("25" if index % 50 == 0 else "15")
    children = Children(
        states="".join(states),
        version=40,
        counts={"FAILED": 40, "SUCCEEDED": 960},
        usage=Usage(vcpu_hours=250.0, memory_gib_hours=1000.0),
        run_times=sweep_run_times(),
        # the lowest 20 failed children's logs, as tracking keeps them (limits.FAILED_CHILD_LOGS)
        failed_logs={index: ("/aws/batch/job", child_log_stream(index)) for index in OUT_OF_MEMORY[:20]},
    )
    array = job(
        "sweep-1",
        "lr-sweep",
        run_id="run-sweep",
        spec_name="lr-sweep",
        status="FAILED",
        array_size=SWEEP_SIZE,
        history=history(
            ("SUBMITTED", 0, 0), ("PENDING", 0.5, 0), ("RUNNABLE", 1, 0), ("RUNNING", 2, 0), ("FAILED", 95, 0)
        ),
        failure_class="non_zero_exit",
        failure="40 of 1,000 children failed",
        finished_at=at(95),
        children={"FAILED": 40, "SUCCEEDED": 960},
        status_summary={"FAILED": 40, "SUCCEEDED": 960},
        child_vcpu_hours=250.0,
        child_memory_gib_hours=1000.0,
        resources=Resources(vcpus=1, memory_mib=4096),
        sweep=SWEEP,
    )
    record = run(
        "run-sweep",
        status="failed",
        spec_name="lr-sweep",
        finished_at=at(95),
        reason="40 of 1,000 children failed",
        jobs=[SubmittedJobRef.of(array)],
    )
    return Scenario(run=record, jobs=[array], children={"sweep-1": children})


def rejected() -> Scenario:
    problems = [
        Problem(
            path="steps[1].resources.gpus",
            message="a gpu step needs a gpu queue: none is routed",
            code="no_route",
            line=12,
            column=7,
        ),
        Problem(
            path="steps[0].image",
            message="unknown field `imgae`: did you mean `image`?",
            code="unknown_field",
            line=4,
            column=3,
        ),
    ]
    record = run("run-rejected", status="rejected", problems=problems, problem_count=3, submitted_at=at(0.05))
    return Scenario(run=record, jobs=[])


def in_progress() -> Scenario:
    """A run still going: prep running, train waiting on it."""
    prep = job(
        "prep-9",
        "prep",
        run_id="run-going",
        status="RUNNING",
        history=history(("SUBMITTED", 0, 0), ("RUNNABLE", 1, 0), ("STARTING", 2, 0), ("RUNNING", 3, 0)),
    )
    train = job(
        "train-9",
        "train",
        run_id="run-going",
        status="PENDING",
        depends_on=["prep-9"],
        history=history(("SUBMITTED", 0, 0), ("PENDING", 0.5, 0)),
    )
    record = run("run-going", status="running", jobs=[SubmittedJobRef.of(prep), SubmittedJobRef.of(train, ["prep"])])
    return Scenario(run=record, jobs=[prep, train], now=at(30))


ALL = {"pipeline": pipeline, "sweep": sweep, "rejected": rejected, "in_progress": in_progress}
