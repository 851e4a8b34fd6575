"""Dropping a spec into a running control plane and waiting for its run to end, as the end-to-end tests
(recovery, resume, rerun, report) do it; and the Batch jobs a run made, read back from the local Batch."""

from __future__ import annotations

import time

import pytest
from batchdrop_local.control_plane import ControlPlane

from batchdrop.store.records import RunRecord

FINISHED = {"succeeded", "failed", "cancelled", "rejected"}
BATCH_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def run_ids(plane: ControlPlane, team: str = "vision") -> set[str]:
    runs, _ = plane.table.list_runs(team, limit=100)
    return {run.run_id for run in runs}


def wait_for_new_run(plane: ControlPlane, known: set[str], team: str = "vision", timeout: float = 120) -> RunRecord:
    """The first run of `team` not in `known` to have ended (waited for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs, _ = plane.table.list_runs(team, limit=100)
        ended = [run for run in runs if run.run_id not in known and run.status in FINISHED]
        if ended:
            return ended[0]
        time.sleep(0.25)
    pytest.fail(f"no new run of {team} ended within {timeout:.0f} s")


def drop_and_wait(plane: ControlPlane, key: str, body: bytes, *, team: str = "vision") -> RunRecord:
    """Upload the spec at `key`; the new run it made once it has ended."""
    known = run_ids(plane, team)
    plane.aws.client("s3").put_object(Bucket=plane.bucket, Key=key, Body=body)
    return wait_for_new_run(plane, known, team)


def batch_job_names(plane: ControlPlane, run: RunRecord) -> list[str]:
    """The names of every Batch job made for the run (their names carry its run id), array children left out."""
    batch = plane.aws.client("batch")
    names: list[str] = []
    for queue in batch.describe_job_queues()["jobQueues"]:
        for status in BATCH_STATUSES:
            summaries = batch.list_jobs(jobQueue=queue["jobQueueArn"], jobStatus=status)["jobSummaryList"]
            names += [s["jobName"] for s in summaries if run.run_id in s["jobName"] and ":" not in s["jobId"]]
    return names
