"""`make demo`, headless: the example specs dropped into the whole control plane on the embedded
AWS end as the demo scenario says, with their receipts, records and Slack messages; the failed
pipeline's `batchdrop rerun` reuses its succeeded steps and submits only the failed one."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from batchdrop_local.demo import Demo, run_demo
from rich.console import Console

pytestmark = pytest.mark.integration


def test_the_demo_ends_every_run_as_its_scenario_expects(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def inspect(demo: Demo) -> None:
        s3 = demo.aws.client("s3")
        for drop in demo.drops:
            key = drop.key.replace("incoming/", "receipts/", 1) + ".json"
            seen[drop.name] = json.loads(s3.get_object(Bucket=demo.plane.bucket, Key=key)["Body"].read())

    screen = io.StringIO()
    journal = tmp_path / "slack.jsonl"
    ok, snapshot, demo = run_demo(
        timeout=90, console=Console(file=screen, width=160), inspect=inspect, slack_journal=journal
    )

    assert ok, screen.getvalue()
    assert "✓ every run ended as expected" in screen.getvalue()
    ended = {name: run.status for name, run in snapshot.runs.items()}
    assert ended == {
        "cpu-report.yaml": "failed",
        "ddp-training.yaml": "succeeded",
        "gpu-finetune.yaml": "succeeded",
        "lr-grid-1000.yaml": "succeeded",
        "resnet-pipeline.yaml": "failed",
        "triage-experiment.json": "succeeded",
        "vision-production.yaml": "succeeded",
        "typo-in-gpus.yaml": "rejected",
        "resnet-pipeline.yaml (rerun)": "succeeded",
    }

    # receipts: every drop has one; the bad spec's says what is wrong and where
    assert {name: receipt["status"] for name, receipt in seen.items()} == {
        name: "rejected" if status == "rejected" else "submitted" for name, status in ended.items()
    }
    [problem] = seen["typo-in-gpus.yaml"]["problems"]
    assert problem["line"] is not None
    assert "gpu" in problem["message"].lower()

    # the pipeline's evaluation exited 1 (a bug: not retried); `batchdrop rerun` of the run, as its
    # request file under the team's folder, reused prep and train (their jobs) and ran evaluate again
    failed, rerun = snapshot.runs["resnet-pipeline.yaml"], snapshot.runs["resnet-pipeline.yaml (rerun)"]
    evaluate = {job.step: job for job in snapshot.jobs["resnet-pipeline.yaml"]}["evaluate"]
    assert (evaluate.status, evaluate.exit_code, evaluate.attempts) == ("FAILED", 1, 1)
    assert rerun.source.key.startswith("incoming/vision/resnet-pipeline.rerun-")
    assert rerun.resumes == failed.run_id
    earlier = {job.step: job.job_id for job in failed.jobs}
    receipt = seen["resnet-pipeline.yaml (rerun)"]
    assert [(job["step"], job.get("reused_from"), job["job_id"]) for job in receipt["jobs"]] == [
        ("prep", failed.run_id, earlier["prep"]),
        ("train", failed.run_id, earlier["train"]),
        ("evaluate", None, rerun.jobs[2].job_id),
    ]
    [again] = snapshot.jobs["resnet-pipeline.yaml (rerun)"]  # the only job it submitted
    assert (again.step, again.status, again.run_id) == ("evaluate", "SUCCEEDED", rerun.run_id)
    assert again.job_id != earlier["evaluate"]
    shown = [line for line in screen.getvalue().splitlines() if "resnet-pipeline.yaml (rerun)" in line]
    assert any(line.count("succeeded; reused prep, train; submitted evaluate") == 2 and "✓" in line for line in shown)
    assert any(f"prep reused (run {failed.run_id[:8]}" in line for line in shown), "the live view names the run"

    # records: GPU steps on GPU queues, recoveries, a sweep's 1,000 children counted
    jobs = {
        (job.spec_name, job.step): job
        for name, records in snapshot.jobs.items()
        if not name.endswith("(rerun)")
        for job in records
    }
    assert jobs[("resnet-sweep", "train")].hardware == "gpu"
    assert jobs[("resnet-sweep", "train")].queue.startswith("gpu-")
    assert jobs[("resnet-sweep", "prep")].queue == "cpu-shared"
    # reclaimed on its two spot attempts, the job was resubmitted on the on-demand queue, where it ran
    finetune = jobs[("detector-finetune", "main")]
    assert (finetune.queue, finetune.status, finetune.recovery_counts.spot_reclaims) == (
        "gpu-on-demand",
        "SUCCEEDED",
        2,
    )
    assert finetune.recovers is not None
    assert jobs[("lr-grid", "main")].children == {"SUCCEEDED": 1000}
    # out of memory with 244 GiB: resubmitted with 1.5 times that, and the step after it ran on the new job
    train = jobs[("detector-release", "train")]
    assert (train.status, train.resources.memory_mib, train.recovery_counts.out_of_memory) == ("SUCCEEDED", 374784, 1)
    package = jobs[("detector-release", "package")]
    assert package.status == "SUCCEEDED"
    assert package.recovers is not None, "submitted again, after the new train job"
    assert jobs[("nightly-report", "main")].exit_code == 3
    # distributed training: one multi-node job of 4 nodes on the on-demand queue, every node counted
    ddp = jobs[("ddp-training", "train")]
    assert (ddp.queue, ddp.nodes, ddp.status) == ("gpu-on-demand", 4, "SUCCEEDED")
    assert ddp.usage is not None
    assert ddp.usage.gpu_hours == pytest.approx(4 * ddp.usage.vcpu_hours / 48), "4 GPUs and 48 vCPUs a node"

    # Slack: each team's channel, the failures classified, the rejection explained
    texts: dict[str, list[str]] = {message.channel: [] for message in demo.slack.received}
    for message in demo.slack.received:
        texts[message.channel].append(message.text)
    assert set(texts) == {"vision", "forecasting"}
    vision = "\n".join(texts["vision"])
    assert "typo-in-gpus.yaml" in vision  # the rejection
    assert "ran out of memory with 244 GiB; retrying with 366 GiB (1 of 2)" in vision
    assert "resubmitted on on-demand queue `gpu-on-demand`" in vision
    assert "detector-finetune" in vision
    assert "Run failed: resnet-sweep" in vision
    assert "Run succeeded: resnet-sweep" in vision, "its rerun"
    assert any("exit code 3" in text or "code 3" in text for text in texts["forecasting"])

    # every message kept, in the order received, at least one per run; and all shown at the end
    kept = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(entry["channel"], entry["text"]) for entry in kept] == [
        (message.channel, message.text) for message in demo.slack.received
    ]
    assert len(kept) >= len(demo.drops)
    assert f"Slack: {len(kept)} messages" in screen.getvalue()
