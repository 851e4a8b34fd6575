"""Real-shaped "Batch Job State Change" and "Batch Job Queue Blocked" events.

Batch puts, in each event's `detail`, the job as DescribeJobs shows it. These
functions take a job as the emulator describes it (or as a test makes it up)
and dress it as the event Batch would send at a status: attempts so far,
their containers and log streams, exit codes, reasons, array properties.
The committed files under `events/track/` were made by `write_samples()`,
and the tests, the benchmark and the local Batch all use this one shape.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events" / "track"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SQS_TEMPLATE = {
    "receiptHandle": "AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq6lO9ZXZ5L5S3o0zWn0dFDKkq0Ik2NQ+fGxL5kdz0vq7Jx1h9Nbs1rz==",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1763928300000",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1763928300010",
    },
    "messageAttributes": {},
    "eventSource": "aws:sqs",
    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:batchdrop-local-TrackingQueue",
    "awsRegion": REGION,
}


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_stream(job: dict[str, Any], attempt: int) -> str:
    definition = job.get("jobDefinition", "job/definition:1").rsplit("/", 1)[-1].split(":")[0]
    return f"{definition}/default/{uuid.uuid5(uuid.NAMESPACE_URL, job['jobId'] + str(attempt)).hex}"


def state_change(
    job: dict[str, Any],
    status: str,
    *,
    at: datetime,
    attempts: list[dict[str, Any]] | None = None,
    reason: str | None = None,
    exit_code: int | None = None,
    blocked: bool = False,
) -> dict[str, Any]:
    """The EventBridge event Batch sends when `job` reaches `status` (its `detail` is the job)."""
    detail = copy.deepcopy(job)
    detail["status"] = status
    detail["attempts"] = attempts or []
    if reason is not None:
        detail["statusReason"] = reason
    else:
        detail.pop("statusReason", None)
    is_parent = "size" in job.get("arrayProperties", {})
    if status in {"RUNNING", "SUCCEEDED", "FAILED"} and not is_parent and "container" in detail:
        current = len(detail["attempts"]) + (1 if status == "RUNNING" else 0)  # attempts lists finished ones
        if current:  # a job that never ran (cancelled, or its dependency failed) has no log stream
            detail["container"]["logStreamName"] = log_stream(job, current)
    if exit_code is not None and "container" in detail:
        detail["container"]["exitCode"] = exit_code
    if status in {"SUCCEEDED", "FAILED"}:
        detail["stoppedAt"] = epoch_ms(at)
    resources = [f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job['jobId']}"]
    if blocked:
        resources.append(job["jobQueue"])
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Batch Job Queue Blocked" if blocked else "Batch Job State Change",
        "source": "aws.batch",
        "account": ACCOUNT,
        "time": iso(at),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def attempt(
    job: dict[str, Any],
    number: int,
    *,
    started: datetime,
    stopped: datetime,
    exit_code: int | None,
    reason: str | None = None,
    status_reason: str | None = None,
) -> dict[str, Any]:
    """One finished attempt, as Batch lists it in `attempts`."""
    return {
        "container": {
            "containerInstanceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/batchdrop/{uuid.uuid4().hex}",
            "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/batchdrop/{uuid.uuid4().hex}",
            **({"exitCode": exit_code} if exit_code is not None else {}),
            **({"reason": reason} if reason else {}),
            "logStreamName": log_stream(job, number),
            "networkInterfaces": [],
        },
        "startedAt": epoch_ms(started),
        "stoppedAt": epoch_ms(stopped),
        "statusReason": status_reason or ("Essential container in task exited"),
    }


def in_sqs(*events: dict[str, Any], message_ids: list[str] | None = None) -> dict[str, Any]:
    """An SQS event (as Lambda gets it from the tracking queue) carrying these EventBridge events."""
    records = []
    for index, event in enumerate(events):
        body = json.dumps(event, separators=(",", ":"))
        template = copy.deepcopy(SQS_TEMPLATE)
        records.append(
            {
                "messageId": message_ids[index] if message_ids else str(uuid.uuid4()),
                "receiptHandle": template.pop("receiptHandle"),
                "body": body,
                **template,
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324  # what SQS sends
            }
        )
    return {"Records": records}


def sample_job(
    job_id: str = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
    *,
    array_size: int | None = None,
    name: str = "resnet-sweep-train-abcdefghijklmnopqrst",
    gpus: int = 1,
) -> dict[str, Any]:
    """A job as DescribeJobs shows one batchdrop submitted (for the sample files and unit tests)."""
    created = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)
    job: dict[str, Any] = {
        "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
        "jobName": name,
        "jobId": job_id,
        "jobQueue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/gpu-shared",
        "status": "SUBMITTED",
        "shareIdentifier": "vision",
        "schedulingPriority": 50,
        "attempts": [],
        "createdAt": epoch_ms(created),
        "retryStrategy": {
            "attempts": 3,
            "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "retry"}, {"onReason": "*", "action": "exit"}],
        },
        "dependsOn": [],
        "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/vision-trainer:3",
        "parameters": {"experiment_file": "s3://ml-data/experiments/resnet.yaml"},
        "container": {
            "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/vision-trainer:2026.11",
            "command": ["python", "train.py"],
            "jobRoleArn": f"arn:aws:iam::{ACCOUNT}:role/vision-batch-job",
            "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/batch-execution",
            "volumes": [],
            "environment": [{"name": "BATCHDROP_RUN_ID", "value": "abcdefghijklmnopqrst"}],
            "mountPoints": [],
            "ulimits": [],
            "networkInterfaces": [],
            "resourceRequirements": [{"value": "8", "type": "VCPU"}, {"value": "61440", "type": "MEMORY"}]
            + ([{"value": str(gpus), "type": "GPU"}] if gpus else []),
            "secrets": [],
        },
        "tags": {
            "batchdrop:team": "vision",
            "batchdrop:run-id": "abcdefghijklmnopqrst",
            "batchdrop:environment": "adhoc",
            "batchdrop:step": "train",
            "resourceArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
        },
        "propagateTags": True,
        "platformCapabilities": ["EC2"],
        "eksAttempts": [],
    }
    if array_size:
        job["arrayProperties"] = {"size": array_size, "statusSummary": {}}
    return job


def as_batch_shows_it(described: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    """A job as the emulator describes it, with what Batch would also show: the resources the
    request asked for (the emulator keeps the job definition's), and no attempts yet."""
    job = copy.deepcopy(described)
    for key in ("attempts", "startedAt", "stoppedAt", "statusReason"):
        job.pop(key, None)
    container = job.setdefault("container", {})
    for key in ("vcpus", "memory", "logStreamName", "exitCode"):
        container.pop(key, None)
    container["resourceRequirements"] = [
        {"type": "VCPU", "value": str(resources["vcpus"]).removesuffix(".0")},
        {"type": "MEMORY", "value": str(resources["memory_mib"])},
    ] + ([{"type": "GPU", "value": str(resources["gpus"])}] if resources.get("gpus") else [])
    return job


def write_samples() -> None:
    """Write the committed sample events under events/track/ (run once; kept as fixtures)."""
    EVENTS.mkdir(parents=True, exist_ok=True)
    job = sample_job()
    base = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        return base.replace(minute=minutes)

    first = attempt(
        job,
        1,
        started=at(3),
        stopped=at(9),
        exit_code=None,
        status_reason="Host EC2 (instance i-0f1e2d3c4b5a69788) terminated.",
    )
    second = attempt(job, 2, started=at(12), stopped=at(40), exit_code=0)
    samples: dict[str, dict[str, Any]] = {
        "state-change-pending.json": state_change(job, "PENDING", at=at(0)),
        "state-change-runnable.json": state_change(job, "RUNNABLE", at=at(1)),
        "state-change-starting.json": state_change(job, "STARTING", at=at(2)),
        "state-change-running.json": state_change(job, "RUNNING", at=at(3)),
        "state-change-runnable-retry.json": state_change(job, "RUNNABLE", at=at(10), attempts=[first]),
        "state-change-running-retry.json": state_change(job, "RUNNING", at=at(12), attempts=[first]),
        "state-change-succeeded.json": state_change(
            job,
            "SUCCEEDED",
            at=at(40),
            attempts=[first, second],
            exit_code=0,
            reason="Essential container in task exited",
        ),
        "state-change-failed-oom.json": state_change(
            job,
            "FAILED",
            at=at(30),
            exit_code=137,
            reason="Essential container in task exited",
            attempts=[
                attempt(
                    job,
                    1,
                    started=at(3),
                    stopped=at(30),
                    exit_code=137,
                    reason="OutOfMemoryError: Container killed due to memory usage",
                )
            ],
        ),
        "queue-blocked.json": state_change(
            job,
            "RUNNABLE",
            at=at(45),
            blocked=True,
            reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) "
            "is higher than that can be met by the CE(s) attached to the job queue.",
        ),
    }
    parent = sample_job("8f3e2c1a-5b4d-4e6f-9a8b-7c6d5e4f3a2b", array_size=4)
    child = {**sample_job("8f3e2c1a-5b4d-4e6f-9a8b-7c6d5e4f3a2b:3"), "arrayProperties": {"index": 3}}
    samples["array-parent-pending.json"] = state_change(
        {**parent, "arrayProperties": {"size": 4, "statusSummary": {"PENDING": 4}}}, "PENDING", at=at(0)
    )
    samples["array-child-running.json"] = state_change(child, "RUNNING", at=at(5))
    samples["array-parent-failed.json"] = state_change(
        {**parent, "arrayProperties": {"size": 4, "statusSummary": {"SUCCEEDED": 3, "FAILED": 1}}},
        "FAILED",
        at=at(50),
        reason="Array Child Job failed",
    )
    multi = sample_job("1d2c3b4a-6f5e-4d3c-8b2a-1f0e9d8c7b6a", name="detector-release-train-qrstuvwxyzabcdefghij")
    multi.pop("container")
    multi["ecsProperties"] = {
        "taskProperties": [
            {
                "containers": [
                    {
                        "name": "trainer",
                        "image": "trainer:1",
                        "essential": True,
                        "logStreamName": "release/trainer/2b3c",
                        "resourceRequirements": [
                            {"value": "30", "type": "VCPU"},
                            {"value": "245760", "type": "MEMORY"},
                            {"value": "4", "type": "GPU"},
                        ],
                    },
                    {
                        "name": "metrics-sidecar",
                        "image": "sidecar:1",
                        "essential": False,
                        "logStreamName": "release/metrics-sidecar/2b3c",
                        "resourceRequirements": [{"value": "2", "type": "VCPU"}, {"value": "4096", "type": "MEMORY"}],
                    },
                ]
            }
        ]
    }
    samples["multi-container-running.json"] = state_change(multi, "RUNNING", at=at(7))
    samples.update(shape_samples(multi))
    for name, event in samples.items():
        (EVENTS / name).write_text(json.dumps(event, indent=2) + "\n")
    order = [
        "state-change-runnable.json",
        "state-change-running.json",
        "array-child-running.json",
        "queue-blocked.json",
    ]
    batch = in_sqs(
        *(samples[name] for name in order),
        message_ids=[
            "a3c5e7f9-1b2d-4f6a-8c0e-2a4c6e8f0b1d",
            "b4d6f8a0-2c3e-4a7b-9d1f-3b5d7f9a1c2e",
            "c5e7a9b1-3d4f-4b8c-8e2a-4c6e8a0b2d3f",
            "d6f8b0c2-4e5a-4c9d-9f3b-5d7f9b1c3e4a",
        ],
    )
    (EVENTS / "sqs-batch.json").write_text(json.dumps(batch, indent=2) + "\n")


def task_attempt(
    job: dict[str, Any],
    number: int,
    *,
    started: datetime,
    stopped: datetime,
    containers: dict[str, tuple[int | None, str | None]],
    status_reason: str,
) -> dict[str, Any]:
    """One finished attempt of an `ecsProperties` job: its exit codes and reasons live only in
    `taskProperties[].containers[]` (name -> (exit code, reason))."""
    task = uuid.uuid5(uuid.NAMESPACE_URL, f"{job['jobId']}/{number}").hex
    return {
        "taskProperties": [
            {
                "containerInstanceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/batchdrop/{task}",
                "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/batchdrop/{task}",
                "containers": [
                    {
                        "name": name,
                        **({"exitCode": code} if code is not None else {}),
                        **({"reason": reason} if reason else {}),
                        "logStreamName": f"release/{name}/{task[:4]}",
                        "networkInterfaces": [],
                    }
                    for name, (code, reason) in containers.items()
                ],
            }
        ],
        "startedAt": epoch_ms(started),
        "stoppedAt": epoch_ms(stopped),
        "statusReason": status_reason,
    }


def shape_samples(ecs_job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shapes beyond one container: an `ecsProperties` job's end with per-attempt codes (a success
    after a spot reclaim; a failure whose codes are only in its attempts), a multi-node parallel job's
    main and child node, an EKS job. Deterministic (ids from the job), so rewriting them changes nothing."""
    base = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        return base + timedelta(minutes=minutes)

    def fixed(event: dict[str, Any], name: str) -> dict[str, Any]:
        return {**event, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name))}

    reclaimed = "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated."
    exited = "Essential container in task exited"
    spot = task_attempt(
        ecs_job, 1, started=at(7), stopped=at(9), containers={"trainer": (None, None)}, status_reason=reclaimed
    )
    done = task_attempt(
        ecs_job,
        2,
        started=at(12),
        stopped=at(40),
        containers={"trainer": (0, None), "metrics-sidecar": (137, None)},  # ECS stops the sidecar: not the job
        status_reason=exited,
    )
    succeeded = copy.deepcopy(ecs_job)
    for container in succeeded["ecsProperties"]["taskProperties"][0]["containers"]:
        container["exitCode"] = 0 if container["name"] == "trainer" else 137
    oom = task_attempt(
        ecs_job,
        1,
        started=at(7),
        stopped=at(20),
        containers={
            "trainer": (137, "OutOfMemoryError: Container killed due to memory usage"),
            "metrics-sidecar": (143, None),
        },
        status_reason=exited,
    )
    code3 = task_attempt(
        ecs_job,
        2,
        started=at(22),
        stopped=at(30),
        containers={"trainer": (3, None), "metrics-sidecar": (143, None)},
        status_reason=exited,
    )
    samples = {
        "ecs-properties-succeeded.json": state_change(
            succeeded, "SUCCEEDED", at=at(40), attempts=[spot, done], reason=exited
        ),
        "ecs-properties-failed.json": state_change(ecs_job, "FAILED", at=at(30), attempts=[oom, code3]),
    }
    mnp_id = "7e6d5c4b-3a29-4817-9f6e-5d4c3b2a1908"
    for index, code, reason in [(0, 1, None), (1, 137, "OutOfMemoryError: Container killed due to memory usage")]:
        node = sample_job(f"{mnp_id}#{index}", name="detector-release-train-mnpabcdefghijklmnop")
        node["nodeDetails"] = {"nodeIndex": index, "isMainNode": index == 0}
        ended = attempt(node, 1, started=at(5), stopped=at(25), exit_code=code, reason=reason, status_reason=exited)
        name = f"multi-node-{'main' if index == 0 else 'child'}-failed.json"
        samples[name] = state_change(node, "FAILED", at=at(25), attempts=[ended], exit_code=code, reason=exited)
    eks = sample_job("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", name="vision-eks-train-abcdefghijklmnopqrst")
    eks.pop("container")
    eks["platformCapabilities"] = ["EKS"]
    pod = {"podName": "aws-batch.3c4d5e6f", "nodeName": "ip-10-0-12-34.ec2.internal"}
    container = {
        "name": "main",
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/vision-trainer:2026.11",
        "command": ["python", "train.py"],
        "resources": {"limits": {"cpu": "8", "memory": "60Gi", "nvidia.com/gpu": "1"}},
    }
    eks["eksProperties"] = {
        "podProperties": {**pod, "containers": [{**container, "exitCode": 137, "reason": "OOMKilled"}]}
    }
    eks["eksAttempts"] = [
        {
            **pod,
            "containers": [
                {"name": "main", "containerID": "containerd://5f1e", "exitCode": 137, "reason": "OOMKilled"}
            ],
            "eksClusterArn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/ml",
            "podNamespace": "batch",
            "startedAt": epoch_ms(at(5)),
            "stoppedAt": epoch_ms(at(35)),
            "statusReason": "Pod failed",
        }
    ]
    samples["eks-failed.json"] = state_change(eks, "FAILED", at=at(35), reason="Pod failed")
    return {name: fixed(event, name) for name, event in samples.items()}


def write_shape_samples() -> None:
    """Write only the samples of `shape_samples` (the rest keep their committed bytes)."""
    multi = json.loads((EVENTS / "multi-container-running.json").read_text())["detail"]
    for key in ("status", "attempts", "startedAt", "stoppedAt", "statusReason"):
        multi.pop(key, None)
    for name, event in shape_samples(multi).items():
        (EVENTS / name).write_text(json.dumps(event, indent=2) + "\n")


if __name__ == "__main__":
    write_samples()
