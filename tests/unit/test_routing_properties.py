"""Properties over generated specs and configs: the routing invariants always hold.

Whatever the platform config says (even one that skipped its load-time checks)
and whatever a spec asks for, a planned GPU job is on a gpu queue, a planned
CPU job is on a cpu queue, every job fits its queue, and every request is
within Batch's limits. Anything else is refused, never planned.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from batchdrop.errors import SpecRejected
from batchdrop.platform.batch_limits import batch_limit_violations
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.planning import check_and_plan

NAMES = st.sampled_from(["a", "b", "c", "d"])
TEAMS = ["vision", "forecasting"]
ENVIRONMENTS = ["adhoc", "production"]
HARDWARE = ["cpu", "gpu"]


@st.composite
def queues(draw: st.DrawFn) -> dict[str, Any]:
    hardware = draw(st.sampled_from(HARDWARE))
    return {
        "arn": f"arn:aws:batch:us-east-1:123456789012:job-queue/q{draw(st.integers(0, 99))}",
        "hardware": hardware,
        "max_vcpus": draw(st.integers(1, 128)),
        "max_memory_mib": draw(st.integers(1024, 500_000)),
        "max_gpus": draw(st.integers(0, 8)),  # unchecked: a cpu queue may claim GPUs here
        "fair_share": draw(st.booleans()),
    }


@st.composite
def platform_configs(draw: st.DrawFn) -> PlatformConfig:
    queue_map = draw(st.dictionaries(NAMES, queues(), min_size=1, max_size=4))
    teams = {
        team: {
            "job_definitions": {"trainer": "arn:aws:batch:us-east-1:123456789012:job-definition/t:1"},
            "environments": draw(st.sampled_from([ENVIRONMENTS, ENVIRONMENTS, ["adhoc"], ["production"]])),
            "share_identifier": draw(st.none() | st.just(team)),
            "default_priority": draw(st.integers(0, 9999)),
        }
        for team in TEAMS
    }
    routes = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "when": st.fixed_dictionaries(
                        {},
                        optional={
                            "team": st.sampled_from(TEAMS),
                            "environment": st.sampled_from(ENVIRONMENTS),
                            "hardware": st.sampled_from(HARDWARE),
                        },
                    ),
                    "queue": st.sampled_from(sorted(queue_map)),
                }
            ),
            min_size=0,
            max_size=5,
        )
    )
    if draw(st.booleans()):  # half the time, also the catch-all routes a careful platform team writes
        for hardware in HARDWARE:
            matching = sorted(name for name, queue in queue_map.items() if queue["hardware"] == hardware)
            if matching:
                routes.append({"when": {"hardware": hardware}, "queue": draw(st.sampled_from(matching))})
    # model_validate only: the load-time invariant checks are deliberately skipped.
    routes = routes or [{"when": {}, "queue": sorted(queue_map)[0]}]
    return PlatformConfig.model_validate({"version": 1, "queues": queue_map, "teams": teams, "routes": routes})


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "vcpus": draw(st.integers(1, 64) | st.integers(1, 160)),
        "memory_mib": draw(st.integers(128, 65_536) | st.integers(128, 600_000)),
        "gpus": draw(st.sampled_from([0, 0, 1, 2, 4, 8, 16])),
    }


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "version": 1,
        "name": "prop",
        "job_definition": "trainer",
        "environment": draw(st.sampled_from(ENVIRONMENTS)),
        "resources": draw(resources()),
        "command": ["run"],
    }
    if draw(st.booleans()):
        spec["priority"] = draw(st.integers(0, 9999))
    if draw(st.booleans()):
        spec["tags"] = {f"t{i}": "v" for i in range(draw(st.integers(0, 50)))}
    if draw(st.booleans()):
        count = draw(st.integers(0, 60))
        width = draw(st.integers(1, 900))
        spec["env"] = {f"V{i}": "x" * width for i in range(count)}
    step_count = draw(st.integers(0, 4))
    if step_count:
        spec["steps"] = []
        for index in range(step_count):
            step: dict[str, Any] = {"name": f"s{index}", "resources": draw(resources())}
            if index:
                step["depends_on"] = [f"s{index - 1}"]
            if draw(st.booleans()):
                step["sweep"] = {"x": [str(i) for i in range(draw(st.integers(2, 40)))]}
            spec["steps"].append(step)
    elif draw(st.booleans()):
        spec["array_size"] = draw(st.integers(2, 10_000))
    return spec


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=platform_configs(), spec=specs(), team=st.sampled_from(TEAMS))
def test_planned_jobs_always_land_on_matching_hardware_that_fits(
    config: PlatformConfig, spec: dict[str, Any], team: str
) -> None:
    try:
        plan = check_and_plan(json.dumps(spec).encode(), "spec.json", team=team, config=config, run_id="r" * 20)
    except SpecRejected as rejected:
        event(f"refused: {rejected.problems[0].code}")  # a refusal always says why
        return
    event("planned")
    for job in plan.jobs:
        queue = config.queues[job.queue]
        wants_gpu = job.resources.gpus > 0
        assert queue.hardware == ("gpu" if wants_gpu else "cpu")
        assert job.hardware == queue.hardware
        assert job.resources.vcpus <= queue.max_vcpus
        assert job.resources.memory_mib <= queue.max_memory_mib
        assert job.resources.gpus <= queue.max_gpus
        assert ("shareIdentifier" in job.request) == queue.fair_share


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=platform_configs(), spec=specs(), team=st.sampled_from(TEAMS))
def test_planned_requests_always_satisfy_batchs_limits(config: PlatformConfig, spec: dict[str, Any], team: str) -> None:
    try:
        plan = check_and_plan(json.dumps(spec).encode(), "spec.json", team=team, config=config, run_id="r" * 20)
    except SpecRejected:
        return
    for job in plan.jobs:
        request = job.submit_request(dict.fromkeys(job.depends_on, "0" * 36))
        assert batch_limit_violations(request) == []
        assert len(json.dumps(request, separators=(",", ":")).encode()) <= 30 * 1024
        assert len(request["tags"]) <= 50
        assert len(request["jobName"]) <= 128
