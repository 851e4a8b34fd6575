"""The rules of tracking that need no AWS: ordering, failure classes, stuck advice, logs, usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchdrop.gateways.log_links import log_url
from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.model import Resources
from batchdrop.store.records import order_key
from batchdrop.track.batch_events import BatchEvent, JobDetail, log_streams
from batchdrop.track.failures import attempt_ends, classify, stuck_advice
from batchdrop.track.usage import requested_resources, usage_of
from tests.conftest import EVENTS, load_event

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def sample(name: str) -> BatchEvent:
    return BatchEvent.model_validate(load_event(f"track/{name}"))


def detail(**fields: Any) -> JobDetail:
    return JobDetail.model_validate({"jobId": "j", "jobName": "n", "jobQueue": "q", "status": "FAILED", **fields})


def test_a_retried_attempt_is_newer_than_anything_before_it() -> None:
    assert order_key(1, "RUNNABLE", T0) > order_key(0, "RUNNING", T0 + timedelta(hours=1))
    assert order_key(0, "RUNNING", T0) > order_key(0, "RUNNABLE", T0 + timedelta(hours=1))
    assert order_key(0, "RUNNING", T0 + timedelta(seconds=1)) > order_key(0, "RUNNING", T0)
    assert order_key(2, "SUCCEEDED", T0) > order_key(1, "RUNNING", T0 + timedelta(days=1))


def test_every_committed_sample_event_reads_and_tolerates_unknown_fields() -> None:
    for path in sorted((EVENTS / "track").glob("*.json")):
        if path.name.startswith("sqs-"):
            continue
        raw = json.loads(path.read_text())
        raw["detail"]["someFieldBatchAddsNextYear"] = {"x": 1}
        raw["newTopLevelField"] = True
        event = BatchEvent.model_validate(raw)
        assert event.source == "aws.batch"
    assert sample("queue-blocked.json").blocked
    assert sample("array-child-running.json").detail.child_index == 3


@pytest.mark.parametrize(
    ("fields", "kind", "words"),
    [
        ({"statusReason": "Host EC2 (instance i-0abc) terminated."}, "spot_reclaim", "reclaimed"),
        (
            {
                "statusReason": "Essential container in task exited",
                "container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"},
            },
            "out_of_memory",
            "out of memory (exit code 137)",
        ),
        (
            {
                "statusReason": "Task failed to start",
                "container": {"reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)"},
            },
            "image_pull",
            "could not be pulled",
        ),
        ({"statusReason": "Job attempt duration exceeded timeout"}, "timeout", "past its timeout"),
        (
            {
                "statusReason": "Canceled by JobStateTimeLimit action due to reason: "
                "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
            },
            "cancelled",
            "JobStateTimeLimit",
        ),
        ({"statusReason": "Dependent Job failed"}, "dependency", "Dependent Job failed"),
        (
            {"statusReason": "Essential container in task exited", "container": {"exitCode": 2}},
            "non_zero_exit",
            "exited with code 2",
        ),
        (
            {"statusReason": "Essential container in task exited", "container": {"exitCode": 137}},
            "out_of_memory",
            "137",
        ),
        ({}, "unknown", "Batch gave no reason"),
    ],
    ids=["spot", "oom", "image-pull", "timeout", "cancelled", "dependency", "exit-2", "exit-137", "unknown"],
)
def test_failures_are_classified_in_plain_words(fields: dict[str, Any], kind: str, words: str) -> None:
    failure = classify(detail(**fields))
    assert failure.kind == kind
    assert words in failure.words


def test_the_sample_oom_event_is_an_out_of_memory_failure() -> None:
    assert classify(sample("state-change-failed-oom.json").detail).kind == "out_of_memory"


BIG = Resources(vcpus=8, memory_mib=65536, gpus=1)
REQUIREMENT = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement is too high."


def test_stuck_advice_names_the_resource_the_queue_cannot_give(platform_config: PlatformConfig) -> None:
    small = platform_config.queues["gpu-shared"].model_copy(update={"max_memory_mib": 62464})
    assert stuck_advice(REQUIREMENT, BIG, "gpu-adhoc", small) == (
        "The job asked queue gpu-adhoc for 64 GiB of memory where its largest instance has 61 GiB. "
        "Ask for less, then drop it again."
    )


def test_stuck_advice_says_when_the_config_and_the_queue_disagree(platform_config: PlatformConfig) -> None:
    advice = stuck_advice(REQUIREMENT, BIG, "gpu-shared", platform_config.queues["gpu-shared"])
    assert "the platform config and the queue disagree" in advice


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity", "no spare capacity"),
        ("MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS - Batch service role has a permission issue", "platform team"),
        ("ACTION_REQUIRED - CE(s) associated with the job queue are invalid", "misconfigured"),
        (None, "waited in queue"),
    ],
)
def test_stuck_advice_for_other_reasons(reason: str | None, words: str, platform_config: PlatformConfig) -> None:
    assert words in stuck_advice(reason, BIG, "gpu-shared", platform_config.queues["gpu-shared"])


def test_every_attempts_log_stream_is_found() -> None:
    succeeded = log_streams(sample("state-change-succeeded.json").detail)
    assert [attempt for attempt, _, _, _ in succeeded] == [1, 2]
    multi = log_streams(sample("multi-container-running.json").detail)
    assert {(container, stream) for _, container, _, stream in multi} == {
        ("trainer", "release/trainer/2b3c"),
        ("metrics-sidecar", "release/metrics-sidecar/2b3c"),
    }


def test_log_links_escape_the_stream_as_the_console_expects() -> None:
    url = log_url("eu-west-1", "/aws/batch/job", "vision-trainer/default/abc")
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/vision-trainer$252Fdefault$252Fabc"
    )


def test_usage_is_requested_resources_times_run_time() -> None:
    resources = requested_resources(sample("state-change-succeeded.json").detail)
    assert resources == Resources(vcpus=8, memory_mib=61440, gpus=1)
    usage = usage_of(resources, 1800)
    assert (usage.vcpu_hours, usage.gpu_hours, usage.memory_gib_hours) == (4.0, 0.5, 30.0)
    multi = requested_resources(sample("multi-container-running.json").detail)
    assert multi == Resources(vcpus=32, memory_mib=249856, gpus=4), "containers are summed"


# ---------------------------------------------------------------- shapes beyond one container


def test_an_ecs_properties_job_reads_its_codes_and_reasons_per_attempt() -> None:
    succeeded = sample("ecs-properties-succeeded.json").detail
    assert succeeded.exit_code == 0, "0 is an exit code; the stopped sidecar's 137 is not the job's"
    assert [(end.attempt, end.failure_class, end.exit_code) for end in attempt_ends(succeeded)] == [
        (1, "spot_reclaim", None),
        (2, None, 0),
    ]
    failed = sample("ecs-properties-failed.json").detail
    assert failed.statusReason is None
    assert failed.exit_code == 3, "the code lives only in the attempts"
    assert classify(failed).words == "the program exited with code 3", "the last attempt's, not attempt 1's"
    assert [(end.failure_class, end.failure) for end in attempt_ends(failed)] == [
        ("out_of_memory", "out of memory (exit code 137)"),
        ("non_zero_exit", "the program exited with code 3"),
    ]


def test_an_attempts_own_status_reason_classifies_a_job_batch_gave_no_reason_for() -> None:
    job = detail(attempts=[{"statusReason": "Host EC2 (instance i-0abc) terminated."}])
    assert classify(job).kind == "spot_reclaim"
    assert classify(detail(eksAttempts=[{"containers": [{"exitCode": 137, "reason": "OOMKilled"}]}])).kind == (
        "out_of_memory"
    )


def test_node_and_eks_events_read() -> None:
    main = sample("multi-node-main-failed.json").detail
    child = sample("multi-node-child-failed.json").detail
    assert (main.is_node, main.is_child, main.node_index, main.node_job_id) == (True, False, 0, child.node_job_id)
    assert child.node_index == 1
    assert child.exit_code == 137
    assert classify(child).kind == "out_of_memory"
    eks = sample("eks-failed.json").detail
    assert (eks.attempt_count, eks.exit_code, classify(eks).kind) == (1, 137, "out_of_memory")
    assert log_streams(eks) == [], "not shown for EKS jobs"
    assert requested_resources(eks) is None, "not shown for EKS jobs"
