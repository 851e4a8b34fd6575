"""Recovery's pure rules: which failure gets a new job, with what, and the Batch retry conditions."""

from __future__ import annotations

from typing import Any

import pytest

from batchdrop.platform.recovery import (
    RecoveryCounts,
    RecoveryPolicy,
    decide,
    decide_children,
    recovered_request,
    recovery_job_name,
    retry_strategy,
)
from batchdrop.spec.model import Retries

GPU_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-spot"
ON_DEMAND_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-on-demand"
POLICY = RecoveryPolicy(
    out_of_memory_times=2,
    grow=2.0,
    max_memory_mib=61_440,
    attempts=3,
    spot_fallback_after=2,
    fallback_queue="gpu-on-demand",
    fallback_queue_arn=ON_DEMAND_ARN,
    fallback_max_memory_mib=122_880,
)


NONE_YET = RecoveryCounts()


def out_of_memory(memory: int, counts: RecoveryCounts = NONE_YET, queue: str = "gpu-spot") -> Any:
    arn = ON_DEMAND_ARN if queue == "gpu-on-demand" else GPU_ARN
    return decide(
        POLICY, failure_class="out_of_memory", memory_mib=memory, queue=queue, queue_arn=arn, counts=counts, reclaims=0
    )


def test_out_of_memory_grows_the_memory_and_says_so_in_numbers() -> None:
    decision = out_of_memory(16_384)
    assert decision.due is not None
    assert decision.final is None
    assert (decision.due.memory_mib, decision.due.queue_arn, decision.due.number) == (32_768, GPU_ARN, 1)
    assert decision.due.words == "ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"
    assert decision.due.counts.out_of_memory == 1


def test_growth_stops_at_the_queues_largest_instance_then_the_failure_is_final() -> None:
    capped = out_of_memory(40_960, RecoveryCounts(out_of_memory=1))
    assert capped.due is not None
    assert capped.due.memory_mib == 61_440
    assert capped.due.words.endswith("retrying with 60 GiB (2 of 2)")
    at_the_top = out_of_memory(61_440)
    assert at_the_top.due is None
    assert at_the_top.final == (
        "ran out of memory with 60 GiB, all the largest instance of queue `gpu-spot` has: not resubmitted"
    )


def test_no_more_than_the_times_asked() -> None:
    decision = out_of_memory(16_384, RecoveryCounts(out_of_memory=2))
    assert decision.due is None
    assert decision.final == "ran out of memory with 16 GiB after 2 of 2 recoveries"


def test_after_falling_back_memory_grows_to_the_fallbacks_largest_instance() -> None:
    decision = out_of_memory(61_440, RecoveryCounts(spot_fallback=1), queue="gpu-on-demand")
    assert decision.due is not None
    assert decision.due.memory_mib == 122_880
    assert decision.due.queue_arn == ON_DEMAND_ARN


@pytest.mark.parametrize(("before", "reclaims", "falls_back"), [(0, 1, False), (0, 2, True), (1, 1, True)])
def test_spot_reclaims_counted_along_the_chain_move_the_job_to_on_demand(
    before: int, reclaims: int, falls_back: bool
) -> None:
    decision = decide(
        POLICY,
        failure_class="spot_reclaim",
        memory_mib=16_384,
        queue="gpu-spot",
        queue_arn=GPU_ARN,
        counts=RecoveryCounts(spot_reclaims=before),
        reclaims=reclaims,
    )
    assert (decision.due is not None) is falls_back
    if decision.due is not None:
        assert (decision.due.queue, decision.due.queue_arn, decision.due.attempts) == (
            "gpu-on-demand",
            ON_DEMAND_ARN,
            1,
        )
        assert decision.due.words == (
            "reclaimed 2 times on spot queue `gpu-spot`; resubmitted on on-demand queue `gpu-on-demand`"
        )


@pytest.mark.parametrize("failure", ["non_zero_exit", "image_pull", "timeout", "cancelled", None])
def test_any_other_failure_is_final_and_not_a_recovery(failure: str | None) -> None:
    decision = decide(
        POLICY,
        failure_class=failure,
        memory_mib=1024,
        queue="gpu-spot",
        queue_arn=GPU_ARN,
        counts=RecoveryCounts(),
        reclaims=5,
    )
    assert decision.due is None
    assert decision.final is None


def test_a_job_without_a_policy_is_never_recovered() -> None:
    decision = decide(
        None,
        failure_class="out_of_memory",
        memory_mib=1024,
        queue="q",
        queue_arn=GPU_ARN,
        counts=RecoveryCounts(),
        reclaims=0,
    )
    assert decision.due is None
    assert decision.final is None


def test_the_recovered_request_changes_only_name_queue_memory_and_attempts() -> None:
    request: dict[str, Any] = {
        "jobName": "detector-train-run1",
        "jobQueue": GPU_ARN,
        "jobDefinition": "arn:def",
        "containerOverrides": {
            "command": ["python", "train.py"],
            "resourceRequirements": [{"type": "VCPU", "value": "8"}, {"type": "MEMORY", "value": "16384"}],
        },
        "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onReason": "OutOfMemoryError*", "action": "EXIT"}]},
        "tags": {"batchdrop:step": "train"},
    }
    due = out_of_memory(16_384).due
    changed = recovered_request(request, name="detector-train-run1-r1", due=due)
    assert changed["jobName"] == "detector-train-run1-r1"
    assert changed["containerOverrides"]["resourceRequirements"][1] == {"type": "MEMORY", "value": "32768"}
    assert changed["retryStrategy"]["attempts"] == 3
    assert changed["retryStrategy"]["evaluateOnExit"] == request["retryStrategy"]["evaluateOnExit"]
    assert {k: v for k, v in changed.items() if k not in {"jobName", "containerOverrides", "retryStrategy"}} == {
        k: v for k, v in request.items() if k not in {"jobName", "containerOverrides", "retryStrategy"}
    }
    assert request["containerOverrides"]["resourceRequirements"][1]["value"] == "16384", "the plan is not changed"
    downstream = recovered_request(request, name="other")
    assert downstream == {**request, "jobName": "other"}


def test_recovery_names_are_deterministic_and_distinct_per_recovery() -> None:
    first = recovery_job_name("detector", "train", "run1", failed_step="train", number=1)
    assert first.endswith("-run1-r1")
    after = recovery_job_name("detector", "evaluate", "run1", failed_step="train", number=1)
    assert after != recovery_job_name("detector", "evaluate", "run1", failed_step="prep", number=1)
    assert after == recovery_job_name("detector", "evaluate", "run1", failed_step="train", number=1)
    assert len(recovery_job_name("x" * 64, "y" * 64, "r" * 20, failed_step="z", number=5)) <= 128


@pytest.mark.parametrize(
    ("retries", "strategy"),
    [
        ({"attempts": 1}, None),
        ({"attempts": 3}, {"attempts": 3}),
        (
            {"attempts": 3, "on_spot_interruption": True},
            {
                "attempts": 3,
                "evaluateOnExit": [
                    {"onStatusReason": "Host EC2*", "action": "RETRY"},
                    {"onReason": "*", "action": "EXIT"},
                ],
            },
        ),
        (
            {"attempts": 3, "on_exit_codes": [75, 99], "out_of_memory": {"times": 2}},
            {
                "attempts": 3,
                "evaluateOnExit": [
                    {"onReason": "OutOfMemoryError*", "action": "EXIT"},
                    {"onStatusReason": "Host EC2*", "action": "RETRY"},
                    {"onExitCode": "75", "action": "RETRY"},
                    {"onExitCode": "99", "action": "RETRY"},
                    {"onReason": "*", "action": "EXIT"},
                ],
            },
        ),
        (
            {"attempts": 5, "on_spot_interruption": True, "spot_fallback": {"after": 2}},
            {
                "attempts": 2,
                "evaluateOnExit": [
                    {"onStatusReason": "Host EC2*", "action": "RETRY"},
                    {"onReason": "*", "action": "EXIT"},
                ],
            },
        ),
        ({"attempts": 3, "spot_fallback": {"after": 1}}, None),
    ],
)
def test_batchs_retry_conditions_leave_memory_and_fallback_to_batchdrop(
    retries: dict[str, Any], strategy: dict[str, Any] | None
) -> None:
    conditions = retry_strategy(Retries.model_validate(retries))
    assert conditions == strategy
    assert conditions is None or len(conditions.get("evaluateOnExit", [])) <= 5, "Batch takes at most 5"


def children(failed: dict[int, tuple[str, int]], memory: int = 16_384, counts: RecoveryCounts = NONE_YET) -> Any:
    return decide_children(
        POLICY, failed=failed, size=1_000, memory_mib=memory, queue="gpu-spot", queue_arn=GPU_ARN, counts=counts
    )


def test_an_array_recovers_just_its_children_that_ran_out_of_memory_by_original_index() -> None:
    failed = dict.fromkeys((3, 7, 10, 11, 12, 13, 14), ("out_of_memory", 1)) | {20: ("other", 1)}
    due = children(failed).due
    assert due is not None
    assert (due.children, due.memory_mib, due.number, due.kind) == ("3,7,10-14", 32_768, 1, "out_of_memory")
    assert due.words == "7 of 1,000 children ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)"


def test_an_arrays_children_reclaimed_enough_times_move_to_on_demand() -> None:
    due = children({4: ("spot_reclaim", 2), 9: ("spot_reclaim", 2)}).due
    assert due is not None
    assert (due.children, due.queue, due.kind) == ("4,9", "gpu-on-demand", "spot_fallback")


def test_an_arrays_children_failing_otherwise_or_past_the_limit_are_final() -> None:
    assert children({1: ("other", 1)}) == children({})
    assert children({1: ("other", 1)}).due is None
    final = children({1: ("out_of_memory", 1)}, memory=61_440).final
    assert (
        final == "1 of 1,000 children ran out of memory with 60 GiB, all the largest instance of queue `gpu-spot` "
        "has: not resubmitted"
    )


def test_the_recovered_request_of_some_children_is_an_array_of_them_told_their_original_indices() -> None:
    request: dict[str, Any] = {
        "jobName": "sweep-main-run1",
        "jobQueue": GPU_ARN,
        "arrayProperties": {"size": 1_000},
        "containerOverrides": {
            "command": ["sh", "-c", "prelude", "batchdrop-sweep", "python", "train.py"],
            "environment": [{"name": "A", "value": "1"}],
            "resourceRequirements": [{"type": "MEMORY", "value": "16384"}],
        },
    }
    due = children(dict.fromkeys((3, 7, 8), ("out_of_memory", 1))).due
    changed = recovered_request(request, name="sweep-main-run1-r1", due=due)
    assert changed["arrayProperties"] == {"size": 3}
    overrides = changed["containerOverrides"]
    assert overrides["environment"] == [
        {"name": "A", "value": "1"},
        {"name": "BATCHDROP_CHILD_INDICES", "value": "3,7-8"},
    ]
    assert overrides["command"] == request["containerOverrides"]["command"], "the sweep's prelude maps the index"
    one = recovered_request(request, name="n", due=children({7: ("out_of_memory", 1)}).due)
    assert "arrayProperties" not in one, "one child: a single job (Batch's arrays have 2 children at least)"
    plain = {**request, "containerOverrides": {**request["containerOverrides"], "command": ["python", "x.py"]}}
    wrapped = recovered_request(plain, name="n", due=due)["containerOverrides"]["command"]
    assert wrapped[:2] == ["sh", "-c"], "a plain array's children get the prelude"
    assert wrapped[-2:] == ["python", "x.py"]
