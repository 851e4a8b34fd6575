"""The Slack messages of every event type and failure class: golden payloads, and Slack's rules.

Golden files live in tests/golden/slack/; after an intended change of layout,
regenerate them with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_slack.py`
and read the diff (or paste a payload into Slack's Block Kit Builder).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from batchdrop.errors import Problem
from batchdrop.events.contract import (
    AttemptTold,
    EventJob,
    JobRecovering,
    JobStatusChanged,
    JobStuck,
    LogLink,
    NodesTold,
    NodeTold,
    RecoveryTold,
    RunEnded,
    RunRejected,
    RunStep,
    RunSubmitted,
    Usage,
)
from batchdrop.notify import block_kit, slack_runs
from batchdrop.notify import slack_blocks as slack
from batchdrop.notify.block_kit import SlackMessage, escape
from batchdrop.notify.slack_blocks import NotifiableEvent, render
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "slack"
BUCKET = "batchdrop-jobs-123456789012-us-east-1-dev"
RUN_ID = "q3k2v5xj7c4mzrh2ydwa"
JOB_ID = "4f5f0d6e-3c1a-4b7e-9a55-8d2f7c1e0b42"
AT = datetime(2026, 11, 23, 21, 40, 12, tzinfo=UTC)


def log_link(attempt: int, container: str | None = None) -> LogLink:
    stream = f"vision-trainer/{container or 'default'}/{attempt:032x}"
    return LogLink(
        attempt=attempt,
        container=container,
        log_group="/aws/batch/job",
        log_stream=stream,
        url=(
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/"
            f"$252Faws$252Fbatch$252Fjob/log-events/{stream.replace('/', '$252F')}"
        ),
    )


def job_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": "e" * 32,
        "time": AT,
        "team": "vision",
        "environment": "adhoc",
        "run_id": RUN_ID,
        "spec_name": "resnet-sweep",
        "source_uri": f"s3://{BUCKET}/incoming/vision/resnet-sweep.yaml",
        "job_id": JOB_ID,
        "job_name": f"resnet-sweep-train-{RUN_ID}",
        "step": "train",
        "queue": "gpu-shared",
        "hardware": "gpu",
        "console_url": f"https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/{JOB_ID}",
        "attempts": 1,
        "receipt_uri": f"s3://{BUCKET}/receipts/vision/resnet-sweep.yaml.json",
        "notify_on": ["failed", "succeeded", "stuck"],
    }
    fields.update(changes)
    return fields


def failed(failure_class: str | None, failure: str | None, reason: str | None, **changes: Any) -> JobStatusChanged:
    defaults: dict[str, Any] = {
        "status": "failed",
        "previous_status": "running",
        "reason": reason,
        "failure_class": failure_class,
        "failure": failure,
        "attempts": 2,
        "log_links": [log_link(1), log_link(2)],
        "duration_seconds": 2843.5,
        "usage": Usage(vcpu_hours=6.3, gpu_hours=0.8, memory_gib_hours=48.0),
    }
    return JobStatusChanged(**job_fields(**{**defaults, **changes}))


FAILURES: dict[str, JobStatusChanged] = {
    "failed-spot-reclaim": failed(
        "spot_reclaim",
        "the instance was reclaimed (spot interruption)",
        "Host EC2 (instance i-0abc123) terminated.",
        exit_code=None,
    ),
    "failed-out-of-memory": failed(
        "out_of_memory",
        "out of memory (exit code 137)",
        "OutOfMemoryError: Container killed due to memory usage",
        exit_code=137,
    ),
    "failed-non-zero-exit": failed(
        "non_zero_exit",
        "the program exited with code 3",
        "Essential container in task exited",
        exit_code=3,
        log_links=[log_link(1)],
        attempts=1,
    ),
    "failed-image-pull": failed(
        "image_pull",
        "the container image could not be pulled",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): manifest unknown",
        log_links=[],
        attempts=1,
        duration_seconds=None,
        usage=None,
    ),
    "failed-timeout": failed(
        "timeout",
        "the attempt ran past its timeout",
        "Job attempt duration exceeded timeout",
        attempts=3,
        log_links=[log_link(1), log_link(2), log_link(3)],
        duration_seconds=43200.0,
    ),
    "failed-cancelled": failed(
        "cancelled",
        "cancelled by alice@example.com: wrong learning rate",
        "cancelled by alice@example.com: wrong learning rate",
        attempts=1,
        log_links=[log_link(1)],
    ),
    "failed-dependency": failed(
        "dependency",
        "Dependent Job failed",
        "Dependent Job failed",
        step="evaluate",
        queue="cpu-shared",
        hardware="cpu",
        attempts=0,
        log_links=[],
        duration_seconds=None,
        usage=None,
    ),
    "lost": failed(
        "lost",
        "Batch no longer knows this job (it forgets finished jobs after a day); its end was never heard",
        "Batch no longer knows this job (it forgets finished jobs after a day); its end was never heard",
        status="lost",
        log_links=[log_link(1)],
        attempts=1,
        duration_seconds=None,
        usage=None,
    ),
    "failed-unknown": failed(None, None, None, attempts=1, log_links=[log_link(1)]),
    "failed-multinode": failed(
        "out_of_memory",
        "out of memory (exit code 137)",
        "Essential container in task exited",
        exit_code=137,
        attempts=1,
        log_links=[],
        step="ddp",
        nodes=NodesTold(
            count=4,
            succeeded=3,
            failed=1,
            failed_nodes=[
                NodeTold(
                    node=2,
                    status="failed",
                    attempt=1,
                    exit_code=137,
                    failure_class="out_of_memory",
                    failure="out of memory (exit code 137)",
                    log_url=log_link(1, "node-2").url,
                )
            ],
            words="4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory",
        ),
    ),
}

RECLAIMED = AttemptTold(
    attempt=1,
    failure_class="spot_reclaim",
    failure="the instance was reclaimed (spot interruption)",
    reason="Host EC2 (instance i-0abc123) terminated.",
    duration_seconds=7.0,
)


def step(name: str, status: str = "succeeded", **changes: Any) -> RunStep:
    fields: dict[str, Any] = {
        "step": name,
        "job_id": f"job-{name}",
        "status": status,
        "queue": "cpu-shared",
        "hardware": "cpu",
        "attempts": 1,
        "ended_at": AT,
        "duration_seconds": 250.0,
        "usage": Usage(vcpu_hours=0.3, memory_gib_hours=1.1),
    }
    return RunStep(**{**fields, **changes})


def run_ended(status: str, steps: list[RunStep], **changes: Any) -> RunEnded:
    fields: dict[str, Any] = {
        "event_id": "n" * 32,
        "time": AT,
        "team": "vision",
        "environment": "adhoc",
        "run_id": RUN_ID,
        "spec_name": "resnet-pipeline",
        "source_uri": f"s3://{BUCKET}/incoming/vision/resnet-pipeline.yaml",
        "status": status,
        "previous_status": "running",
        "steps": steps,
        "step_count": len(steps),
        "duration_seconds": 4330.0,
        "usage": Usage(vcpu_hours=12.6, gpu_hours=3.2, memory_gib_hours=96.0),
        "cost_usd": 10.42,
        "dropped_by": "AWS:AROAEXAMPLEID:alice",
        "receipt_uri": f"s3://{BUCKET}/receipts/vision/resnet-pipeline.yaml.json",
        "report_uri": f"s3://{BUCKET}/runs/run-pipeline/report.html",
        "notify_on": ["succeeded"],
    }
    return RunEnded(**{**fields, **changes})


PIPELINE_TRAIN = step(
    "train",
    queue="gpu-shared",
    hardware="gpu",
    array_size=4,
    attempts=2,
    duration_seconds=3600.0,
    children={"succeeded": 4},
    usage=Usage(vcpu_hours=12.0, gpu_hours=3.2, memory_gib_hours=94.0),
)

OOM_RECOVERY = RecoveryTold(
    number=1,
    kind="out_of_memory",
    words="ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)",
    job_id=JOB_ID,
    memory_mib=32768,
    queue="gpu-shared",
)
SPOT_FALLBACK = RecoveryTold(
    number=2,
    kind="spot_fallback",
    words="reclaimed 2 times on spot queue `gpu-shared`; resubmitted on on-demand queue `gpu-on-demand`",
    job_id="7a1c2d3e-0000-4b7e-9a55-8d2f7c1e0b42",
    memory_mib=32768,
    queue="gpu-on-demand",
)
TRAIN_STORY = (
    "attempt 1: out of memory at 16 GiB → recovery 1 with 32 GiB → reclaimed 2 times on spot queue `gpu-shared` "
    "→ recovery 2 on on-demand queue `gpu-on-demand` → succeeded"
)
SWEEP_WORDS = "40 of 1,000 children ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"
SWEEP_STORY = (
    "40 of 1,000 children ran out of memory with 16 GiB → recovery 1: 40 children with 32 GiB → 40 children succeeded"
)


def recovering(recovery: RecoveryTold, **changes: Any) -> JobRecovering:
    fields: dict[str, Any] = {
        "previous_status": "failed",
        "spec_name": "detector",
        "job_id": recovery.job_id,
        "exit_code": 137,
        "failure_class": "out_of_memory",
        "failure": "out of memory (exit code 137)",
        "reason": "OutOfMemoryError: Container killed due to memory usage",
        "attempt_history": [
            AttemptTold(
                attempt=1,
                failure_class="out_of_memory",
                failure="out of memory (exit code 137)",
                exit_code=137,
                reason="OutOfMemoryError: Container killed due to memory usage",
                duration_seconds=1260.0,
            )
        ],
        "log_links": [log_link(1)],
        "memory_mib": 16384,
        "recovery": recovery,
        "number_of": 2,
        "step_count": 3,
    }
    return JobRecovering(**job_fields(**{**fields, **changes}))


EVENTS: dict[str, NotifiableEvent] = {
    "recovering-out-of-memory": recovering(OOM_RECOVERY),
    "recovering-spot-fallback": recovering(
        SPOT_FALLBACK,
        exit_code=None,
        failure_class="spot_reclaim",
        failure="the instance was reclaimed (spot interruption)",
        reason="Host EC2 (instance i-0abc123) terminated.",
        attempts=2,
        attempt_history=[RECLAIMED, RECLAIMED.model_copy(update={"attempt": 2})],
        log_links=[log_link(1), log_link(2)],
        memory_mib=32768,
        number_of=1,
    ),
    "run-ended-recovered": run_ended(
        "succeeded",
        [
            step("prep", reused_from="20261129T0900Z-prev"),
            step(
                "train",
                queue="gpu-on-demand",
                hardware="gpu",
                duration_seconds=3600.0,
                recoveries=[OOM_RECOVERY, SPOT_FALLBACK],
                story=TRAIN_STORY,
            ),
            step("evaluate"),
        ],
    ),
    "run-ended-single-job-recovered": run_ended(
        "succeeded",
        [
            step(
                "main",
                array_size=40,
                children={"SUCCEEDED": 40},
                recoveries=[OOM_RECOVERY.model_copy(update={"words": SWEEP_WORDS})],
                story=SWEEP_STORY,
            )
        ],
        spec_name="resnet-sweep",
        source_uri=f"s3://{BUCKET}/incoming/vision/resnet-sweep.yaml",
    ),
    "running-after-spot-reclaim": JobStatusChanged(
        **job_fields(
            status="running",
            previous_status="starting",
            attempts=2,
            attempt_history=[RECLAIMED],
            notify_on=["running"],
            log_links=[log_link(1), log_link(2)],
        )
    ),
    "run-ended-succeeded": run_ended("succeeded", [step("prep"), PIPELINE_TRAIN, step("evaluate")]),
    "run-ended-failed": run_ended(
        "failed",
        [
            step("prep"),
            step(
                "train",
                "failed",
                queue="gpu-shared",
                hardware="gpu",
                attempts=2,
                exit_code=137,
                failure_class="out_of_memory",
                failure="out of memory (exit code 137)",
            ),
            step(
                "evaluate",
                "failed",
                attempts=0,
                duration_seconds=None,
                usage=None,
                failure_class="dependency",
                failure="upstream step `train` failed",
            ),
        ],
        reason="step train: out of memory (exit code 137)",
        duration_seconds=3100.0,
    ),
    "run-submitted": RunSubmitted(
        event_id="s" * 32,
        time=AT,
        team="vision",
        environment="adhoc",
        run_id=RUN_ID,
        spec_name="resnet-sweep",
        source_uri=f"s3://{BUCKET}/incoming/vision/resnet-sweep.yaml",
        jobs=[
            EventJob(step="prep", job_id="j-1", job_name="p", queue="cpu-shared", hardware="cpu"),
            EventJob(
                step="train",
                job_id="j-2",
                job_name="t",
                queue="gpu-shared",
                hardware="gpu",
                array_size=4,
                depends_on=["prep"],
            ),
            EventJob(
                step="evaluate", job_id="j-3", job_name="e", queue="cpu-shared", hardware="cpu", depends_on=["train"]
            ),
        ],
        receipt_uri=f"s3://{BUCKET}/receipts/vision/resnet-sweep.yaml.json",
        notify_on=["submitted", "failed", "succeeded"],
        warnings=["step `train` asks for 61440 MiB of 249856 MiB: fine, but <half> the queue's largest instance"],
    ),
    "run-rejected": RunRejected(
        event_id="r" * 32,
        time=AT,
        team="vision",
        environment="adhoc",
        run_id="m7p4x2c9v5b8n3k6j1hq",
        spec_name="typo",
        source_uri=f"s3://{BUCKET}/incoming/vision/typo in gpus.yaml",
        reason="line 4, column 45: resources.gpu: unknown field `gpu`; did you mean `gpus`?",
        problems=[
            Problem(
                path="resources.gpu",
                code="unknown_field",
                line=4,
                column=45,
                message="unknown field `gpu`; did you mean `gpus`?",
            ),
            Problem(path="timeout_minutes", code="greater_than_equal", line=6, column=18, message="must be 1 or more"),
        ],
        problem_count=2,
        receipt_uri=f"s3://{BUCKET}/receipts/vision/typo in gpus.yaml.json",
    ),
    "run-rejected-many-problems": RunRejected(
        event_id="m" * 32,
        time=AT,
        team="forecasting",
        run_id="b" * 20,
        source_uri=f"s3://{BUCKET}/incoming/forecasting/sweep & co <v2>.yaml",
        problems=[
            Problem(path=f"sweep.axis_{index}", code="too_long", line=10 + index, message="at most 100 values")
            for index in range(20)
        ],
        problem_count=37,
        receipt_uri=f"s3://{BUCKET}/receipts/forecasting/sweep & co <v2>.yaml.json",
    ),
    "run-rejected-unreadable": RunRejected(
        event_id="u" * 32,
        time=AT,
        team="vision",
        run_id="c" * 20,
        source_uri=f"s3://{BUCKET}/incoming/vision/huge.yaml",
        problems=[Problem(path="", code="too_large", message="the file is 300 KiB; at most 256 KiB")],
        problem_count=1,
        receipt_uri=None,
    ),
    **FAILURES,
    "succeeded-array": JobStatusChanged(
        **job_fields(
            status="succeeded",
            previous_status="running",
            array_size=1000,
            attempts=1,
            children={"SUCCEEDED": 998, "FAILED": 2},
            duration_seconds=5400.0,
            usage=Usage(vcpu_hours=12000.0, gpu_hours=1500.0, memory_gib_hours=90000.0),
        )
    ),
    "failed-array": failed(
        "non_zero_exit",
        "2 of 1,000 children failed",
        "2 children failed",
        array_size=1000,
        children={"succeeded": 990, "failed": 10},
        log_links=[],
        exit_code=None,
    ),
    "running": JobStatusChanged(
        **job_fields(status="running", previous_status="starting", notify_on=["running"], log_links=[log_link(1)])
    ),
    "stuck": JobStuck(
        **job_fields(
            event_id="k" * 32,
            reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is "
            "higher than that can be met by the CE(s) attached to the job queue.",
            runnable_seconds=7500.0,
            attempts=0,
            advice="The job asked queue gpu-shared for 300 GiB of memory where its largest instance has 244 GiB. "
            "Ask for less, then drop it again.",
        )
    ),
    "stuck-single-job": JobStuck(
        **job_fields(
            event_id="l" * 32,
            spec_name="cpu-report",
            step="main",
            queue="cpu-shared",
            hardware="cpu",
            environment="production",
            runnable_seconds=2400.0,
            advice="AWS has no spare capacity right now for the instances of queue cpu-shared (often spot).",
        )
    ),
}


def all_text(message: SlackMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


# ---------------------------------------------------------------- golden payloads


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_payload_matches_golden(name: str) -> None:
    payload = render(EVENTS[name]).payload()
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    assert payload == json.loads(golden.read_text()), f"regenerate with UPDATE_GOLDEN=1 if intended: {golden}"


def test_every_golden_file_has_an_event() -> None:
    assert {path.stem for path in GOLDEN.glob("*.json")} == set(EVENTS)


# ---------------------------------------------------------------- Slack's rules, for every message


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_slack_accepts_the_blocks(name: str) -> None:
    message = render(EVENTS[name])
    assert 0 < len(message.blocks) <= block_kit.MAX_BLOCKS
    assert message.text.strip(), "clients that cannot show blocks get the text"
    assert message.blocks[0]["type"] == "header"
    parsed = Block.parse_all(message.blocks)
    assert all(block is not None for block in parsed), "every block is a Block Kit type"
    for parsed_block in parsed:
        assert parsed_block is not None
        parsed_block.to_dict()  # slack-sdk validates Slack's limits here (text lengths, field counts…)
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= block_kit.MAX_SECTION_CHARS
    assert message.payload()["unfurl_links"] is False


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_a_failure_says_its_class_and_what_to_do(name: str) -> None:
    event = FAILURES[name]
    kind = slack.failure_kind(event)
    assert kind is not None
    text = all_text(render(event))
    assert slack.FAILURE_TITLES[kind] in text
    assert escape(slack.FAILURE_ADVICE[kind]) in text or slack.FAILURE_ADVICE[kind] in text
    if event.exit_code is not None and kind != "cancelled":
        assert f"exit code {event.exit_code}" in text
    if event.reason:
        assert escape(event.reason) in text
    assert event.console_url in text, "the Batch console is one click away"


@pytest.mark.parametrize("name", sorted(name for name, event in EVENTS.items() if isinstance(event, JobStatusChanged)))
def test_every_attempts_log_is_linked(name: str) -> None:
    event = EVENTS[name]
    assert isinstance(event, JobStatusChanged)
    text = all_text(render(event))
    for item in event.log_links:
        assert f"<{escape(item.url)}|Attempt {item.attempt}" in text


def test_a_failed_multi_node_job_says_which_node_failed_and_links_its_log() -> None:
    event = EVENTS["failed-multinode"]
    assert isinstance(event, JobStatusChanged)
    assert event.nodes is not None
    message = render(event)
    text = all_text(message)
    assert "4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory" in text
    node_log = escape(event.nodes.failed_nodes[0].log_url or "")
    assert f"• node 2: <{node_log}|log>" in text
    assert "4 nodes: 3 succeeded, node 2 failed" in message.text, "the fallback text says it too"
    assert node_log in message.text


def test_many_failed_nodes_are_counted_past_those_described() -> None:
    many = NodesTold(
        count=16,
        succeeded=0,
        failed=16,
        failed_nodes=[
            NodeTold(node=node, status="failed", attempt=1, exit_code=1, log_url=log_link(node, "n").url)
            for node in range(10)
        ],
        words="16 nodes: 16 failed (node 0: the program exited with code 1; …; and 13 more)",
    )
    event = failed("non_zero_exit", "the program exited with code 1", None, exit_code=1, nodes=many)
    message = render(event)
    assert "6 more failed nodes" in all_text(message)
    assert "|attempt 2>. 16 nodes: 16 failed" in message.text, "the fallback's logs, then its nodes"


def test_many_attempts_and_containers_keep_every_link_across_sections() -> None:
    links = [log_link(attempt, container) for attempt in range(1, 11) for container in ("main", "sidecar", "agent")]
    event = failed("non_zero_exit", "exit 1", "Essential container in task exited", exit_code=1, log_links=links)
    message = render(event)
    text = all_text(message)
    assert all(f"<{escape(item.url)}|Attempt {item.attempt} · {item.container}>" in text for item in links)
    log_sections = [block for block in message.blocks if "Attempt " in block.get("text", {}).get("text", "")]
    assert len(log_sections) >= 2, "30 links do not fit one section"
    assert all(len(block["text"]["text"]) <= block_kit.MAX_SECTION_CHARS for block in log_sections)
    assert len(message.blocks) <= block_kit.MAX_BLOCKS


def test_a_rejection_shows_its_first_problems_with_paths_and_lines_and_the_receipt() -> None:
    event = EVENTS["run-rejected-many-problems"]
    assert isinstance(event, RunRejected)
    message = render(event)
    text = all_text(message)
    for problem in event.problems[: slack_runs.MAX_PROBLEMS_SHOWN]:
        assert f"*line {problem.line}*" in text
        assert f"`{problem.path}`" in text
    assert f"`{event.problems[slack_runs.MAX_PROBLEMS_SHOWN].path}`" not in text
    assert "…and 32 more problems in the receipt" in text
    assert "*37 problems*" in text
    receipt_url = (
        "https://s3.console.aws.amazon.com/s3/object/"
        + BUCKET
        + "?prefix=receipts/forecasting/sweep%20%26%20co%20%3Cv2%3E.yaml.json"
    )
    assert escape(receipt_url) in text
    assert any(
        element.get("url") == receipt_url for block in message.blocks for element in block.get("elements", [])
    ), "the Receipt button opens it in the S3 console"


def test_a_rejection_line_and_column_and_the_whole_file() -> None:
    text = all_text(render(EVENTS["run-rejected"]))
    assert "*line 4, column 45* · `resources.gpu`: unknown field `gpu`; did you mean `gpus`?" in text
    unreadable = all_text(render(EVENTS["run-rejected-unreadable"]))
    assert "the whole file: the file is 300 KiB; at most 256 KiB" in unreadable
    assert "Receipt" not in unreadable, "no receipt was written, so none is linked"


def test_a_stuck_job_shows_the_advice_and_how_long_it_waited() -> None:
    event = EVENTS["stuck"]
    assert isinstance(event, JobStuck)
    message = render(event)
    text = all_text(message)
    assert escape(event.advice) in text
    assert "*2 h 5 min*" in text
    assert message.blocks[0]["text"]["text"] == "🚧 Stuck: resnet-sweep / train"
    assert "Stuck: cpu-report has waited 40 min" in render(EVENTS["stuck-single-job"]).text


def test_an_array_job_carries_its_childrens_summary() -> None:
    text = all_text(render(EVENTS["succeeded-array"]))
    assert "*Children* (1,000): ✅ 998 succeeded · ❌ 2 failed" in text
    assert "12,000.0 vCPU-hours · 1,500.0 GPU-hours" in text
    assert "*Children* (1,000): ✅ 990 succeeded · ❌ 10 failed" in all_text(render(EVENTS["failed-array"]))


def test_a_submitted_run_lists_its_jobs_and_what_it_will_hear_about() -> None:
    text = all_text(render(EVENTS["run-submitted"]))
    assert "• `train` → `gpu-shared` (GPU) · array of 4 · after `prep`" in text
    assert "submitted, succeeded, failed, stuck" in text
    assert "&lt;half&gt;" in text, "warnings are escaped"


def test_a_retried_job_that_runs_again_tells_what_became_of_the_attempt_before() -> None:
    message = render(EVENTS["running-after-spot-reclaim"])
    text = all_text(message)
    assert "*Attempt 2* — attempt 1 was reclaimed after 7 s (Host EC2 (instance i-0abc123) terminated)" in text
    assert "*Attempt*\\n2" in text, "the attempt in progress, not how many have ended"
    assert "Ran for" not in text, "an earlier attempt's run time is not this one's"
    assert "attempt 2; attempt 1 was reclaimed" in message.text


def test_a_job_that_failed_after_retries_lists_its_earlier_attempts() -> None:
    oom = AttemptTold(attempt=2, failure_class="out_of_memory", exit_code=137, reason="OutOfMemoryError")
    event = failed(
        "out_of_memory",
        "out of memory (exit code 137)",
        "OutOfMemoryError",
        exit_code=137,
        attempt_history=[RECLAIMED, oom],
    )
    text = all_text(render(event))
    assert "*Earlier attempts*\\n• attempt 1 was reclaimed" in text
    assert "attempt 2 ran out of memory" not in text, "the last attempt's end is the message's own subject"
    assert "*Attempts*\\n2" in text


def test_a_pipelines_summary_lists_every_step_with_its_time_children_and_usage() -> None:
    message = render(EVENTS["run-ended-succeeded"])
    text = all_text(message)
    assert message.blocks[0]["text"]["text"] == "✅ Run succeeded: resnet-pipeline"
    assert "*3 steps* in *1 h 12 min*" in text
    assert "dropped by AWS:AROAEXAMPLEID:alice" in text
    assert "• ✅ `prep` · 4 min 10 s · `cpu-shared` (CPU)" in text
    assert "• ✅ `train` · 1 h · `gpu-shared` (GPU) · ✅ 4 succeeded · 2 attempts · 12.0 vCPU-h, 3.2 GPU-h" in text
    assert "*Used* 12.6 vCPU-hours · 3.2 GPU-hours · 96.0 GiB-hours of memory" in text


def test_a_failed_pipelines_summary_says_why_and_which_steps_failed() -> None:
    message = render(EVENTS["run-ended-failed"])
    text = all_text(message)
    assert message.blocks[0]["text"]["text"] == "❌ Run failed: resnet-pipeline"
    assert "*Why:* step train: out of memory (exit code 137)" in text
    assert "• ❌ `train` · failed" in text
    assert "_Out of memory (exit code 137)_" in text
    assert "_A job it depends on failed: upstream step `train` failed_" in text
    assert "step train: out of memory" in message.text


def test_a_cancelled_step_shows_who_cancelled_it() -> None:
    cancelled = step("train", "failed", failure_class="cancelled", failure="cancelled by alice: wrong data")
    message = render(run_ended("cancelled", [step("prep"), cancelled], reason="step train: cancelled by alice"))
    text = all_text(message)
    assert message.blocks[0]["text"]["text"] == "🚫 Run cancelled: resnet-pipeline"
    assert "• 🚫 `train` · cancelled" in text
    assert "_cancelled by alice: wrong data_" in text


def test_the_dropper_is_named_on_submitted_and_rejected_runs() -> None:
    submitted = EVENTS["run-submitted"].model_copy(update={"dropped_by": "AWS:AIDAEXAMPLE"})
    rejected = EVENTS["run-rejected"].model_copy(update={"dropped_by": "AWS:AROAX:bob <ops>"})
    assert "(dropped by AWS:AIDAEXAMPLE)" in all_text(render(submitted)) + render(submitted).text
    assert "(dropped by AWS:AROAX:bob &lt;ops&gt;)" in all_text(render(rejected))
    assert "(dropped by AWS:AROAX:bob &lt;ops&gt;)" in render(rejected).text


def test_user_text_is_escaped_and_cannot_mention_the_channel() -> None:
    event = failed(
        "non_zero_exit", "exit 1 <!channel>", "boom <!channel> & <@U123> <https://evil.example|click>", exit_code=1
    )
    message = render(event)
    text = all_text(message) + message.text
    assert "<!channel>" not in text
    assert "<@U123>" not in text
    assert "<https://evil.example" not in text
    assert ">boom &lt;!channel&gt; &amp; &lt;@U123&gt;" in text


def test_long_text_is_clipped_to_slacks_limits() -> None:
    event = failed(
        "unknown",
        "x" * 5000,
        "why " * 3000,
        spec_name="s" * 200,
        step="t" * 100,
        log_links=[],
    )
    message = render(event)
    assert len(message.blocks[0]["text"]["text"]) <= block_kit.MAX_HEADER_CHARS
    assert message.blocks[0]["text"]["text"].endswith("…")
    for parsed in Block.parse_all(message.blocks):
        assert parsed is not None
        parsed.to_dict()
    assert len(message.text) <= block_kit.MAX_TEXT_CHARS


def test_a_long_list_of_jobs_ends_with_how_many_more() -> None:
    event = EVENTS["run-submitted"]
    assert isinstance(event, RunSubmitted)
    many = event.model_copy(
        update={
            "jobs": [
                EventJob(step=f"s{index}", job_id=f"j-{index}", job_name="n", queue="cpu-shared", hardware="cpu")
                for index in range(45)
            ]
        }
    )
    text = all_text(render(many))
    assert "…and 25 more jobs" in text
    assert "*45 jobs*" in text


def test_the_block_budget_is_kept_even_if_a_layout_grows() -> None:
    blocks = [block_kit.section(f"line {index}") for index in range(80)]
    message = block_kit.message("text", blocks)
    assert len(message.blocks) == block_kit.MAX_BLOCKS
    assert message.blocks[-1]["text"]["text"] == "…and 31 more blocks"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "0 s"),
        (42.4, "42 s"),
        (61, "1 min 1 s"),
        (754, "12 min"),
        (7500, "2 h 5 min"),
        (7200, "2 h"),
        (90000, "1 d 1 h"),
        (172800, "2 d"),
    ],
)
def test_durations_read_like_a_person_would_say_them(seconds: float | None, words: str) -> None:
    assert block_kit.human_duration(seconds) == words


def test_times_show_in_each_readers_time_zone_with_utc_as_fallback() -> None:
    assert block_kit.slack_date(AT) == "<!date^1795470012^{date_short_pretty} at {time}|2026-11-23 21:40 UTC>"


def test_a_link_label_and_url_cannot_break_out_of_the_link() -> None:
    assert (
        block_kit.link("https://x.example/a?b=1&c=|2", "a <b> | c")
        == "<https://x.example/a?b=1&amp;c=%7C2|a &lt;b&gt; | c>"
    )


def test_clipping_never_leaves_half_a_link_or_entity() -> None:
    text = "a" * 2990 + " <https://example.com/very/long|label> &amp; more"
    clipped = block_kit.clip_markup(text, 3000)
    assert clipped.endswith("…")
    assert "<https" not in clipped
    assert block_kit.clip_markup("a" * 2997 + "&amp;", 3000) == "a" * 2997 + "…"


def test_the_documented_example_is_what_the_sample_event_renders() -> None:
    import re

    from batchdrop.notify.notifier import read_event

    sample = json.loads((ROOT / "events" / "notify" / "sns-job-failed.json").read_text())
    event = read_event(sample["Records"][0]["Sns"]["Message"])
    assert event is not None
    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "notifications.md").read_text(), flags=re.DOTALL)
    (documented,) = [json.loads(block) for block in blocks if '"blocks"' in block]
    assert documented == render(event).payload(), "docs/notifications.md shows an outdated message: paste it anew"


def test_a_recovery_says_what_failed_and_what_the_new_job_asks_for_in_numbers() -> None:
    message = render(EVENTS["recovering-out-of-memory"])
    assert message.text.startswith(
        "🔁 Recovering: detector / train — ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)."
    )
    blocks = all_text(message)
    assert "A new job asks for *32 GiB* on queue `gpu-shared`" in blocks
    assert "attempt 1 ran out of memory" in blocks
    fallback = render(EVENTS["recovering-spot-fallback"]).text
    assert "reclaimed 2 times on spot queue `gpu-shared`; resubmitted on on-demand queue `gpu-on-demand`" in fallback


def test_a_runs_summary_tells_a_recovered_steps_whole_chain_on_one_line() -> None:
    blocks = all_text(render(EVENTS["run-ended-recovered"]))
    chain = blocks.index(f"🔁 {TRAIN_STORY}")
    assert blocks.index("`train`") < chain < blocks.index("`evaluate`")
    assert "ran out of memory with 16 GiB; retrying" not in blocks, "the chain says it: each recovery is not repeated"
    assert "reused (run `20261129T0900Z-prev`)" in blocks


def test_a_single_jobs_summary_tells_its_sweeps_chain_with_its_children() -> None:
    blocks = all_text(render(EVENTS["run-ended-single-job-recovered"]))
    assert f"🔁 {SWEEP_STORY}" in blocks


def test_a_summary_from_before_steps_kept_their_story_tells_each_recovery_in_order() -> None:
    train = step("train", recoveries=[OOM_RECOVERY, SPOT_FALLBACK])
    blocks = all_text(render(run_ended("succeeded", [step("prep"), train, step("evaluate")])))
    first = blocks.index("🔁 ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)")
    second = blocks.index("🔁 reclaimed 2 times on spot queue `gpu-shared`; resubmitted on on-demand queue")
    assert blocks.index("`train`") < first < second < blocks.index("`evaluate`")


def test_a_step_not_recovered_says_why_in_numbers() -> None:
    final = "ran out of memory with 240 GiB, all the largest instance of queue `gpu-shared` has: not resubmitted"
    train = step("train", "failed", exit_code=137, failure_class="out_of_memory", failure=f"out of memory — {final}")
    blocks = all_text(render(run_ended("failed", [step("prep"), train], reason=f"step train: {final}")))
    assert final in blocks
