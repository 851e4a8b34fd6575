"""Multi-node parallel jobs (docs/multinode.md): the spec's `nodes`, the platform's multinode definitions,
routing to on-demand queues only, the fit of every node, the `nodeOverrides` request, Batch's limits, and
the worst case of every node."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from batchdrop.errors import ConfigInvalid, SpecRejected
from batchdrop.platform.batch_limits import batch_limit_violations
from batchdrop.platform.budgets import worst_case
from batchdrop.platform.config import PlatformConfig, parse_platform_config
from batchdrop.platform.fingerprints import content_hash
from batchdrop.platform.planning import Plan, check_and_plan
from tests.conftest import EXAMPLES

RUN_ID = "abcdefghijklmnopqrst"
TRAIN = """
version: 1
name: ddp
job_definition: ddp
nodes: {count: 4}
resources: {vcpus: 48, memory_mib: 184320, gpus: 4}
command: [torchrun, train.py]
timeout_minutes: 60
"""


def plan_of(text: str, config: PlatformConfig, team: str = "vision") -> Plan:
    return check_and_plan(text.encode(), "spec.yaml", team=team, config=config, run_id=RUN_ID)


def codes(text: str, config: PlatformConfig, team: str = "vision") -> list[tuple[str, str]]:
    with pytest.raises(SpecRejected) as caught:
        plan_of(text, config, team)
    return [(problem.code, problem.message) for problem in caught.value.problems]


def config_with(platform_config: PlatformConfig, change: dict[str, Any]) -> PlatformConfig:
    """The example config with `change` merged over it (one level deep per key)."""
    document = yaml.safe_load((EXAMPLES / "platform.yaml").read_text())
    for key, value in change.items():
        document[key] = {**document[key], **value} if isinstance(value, dict) else value
    return parse_platform_config(yaml.safe_dump(document).encode())


def test_a_multinode_job_is_routed_past_the_spot_queue_to_its_on_demand_fallback(
    platform_config: PlatformConfig,
) -> None:
    job = plan_of(TRAIN, platform_config).jobs[0]
    assert (job.queue, job.hardware, job.nodes) == ("gpu-on-demand", "gpu", 4)
    assert "containerOverrides" not in job.request
    assert job.request["nodeOverrides"] == {
        "numNodes": 4,
        "nodePropertyOverrides": [
            {
                "targetNodes": "0:",
                "containerOverrides": {
                    "command": ["torchrun", "train.py"],
                    "environment": [
                        {"name": "BATCHDROP_RUN_ID", "value": RUN_ID},
                        {"name": "BATCHDROP_STEP", "value": "main"},
                        {"name": "BATCHDROP_TEAM", "value": "vision"},
                    ],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "48"},
                        {"type": "MEMORY", "value": "184320"},
                        {"type": "GPU", "value": "4"},
                    ],
                },
            }
        ],
    }
    assert job.request["jobDefinition"].endswith("job-definition/vision-ddp:1")


def test_a_production_multinode_job_goes_to_the_teams_on_demand_production_queue(
    platform_config: PlatformConfig,
) -> None:
    job = plan_of(TRAIN + "environment: production\n", platform_config).jobs[0]
    assert job.queue == "gpu-vision-prod"


def test_a_multinode_job_never_goes_to_spot_fargate_or_the_other_hardware(platform_config: PlatformConfig) -> None:
    """Routes whose queues are all spot, or of capacity unsaid (a Fargate queue says no EC2 on-demand), take
    no multi-node job; a CPU multi-node job is never sent to a GPU queue."""
    no_fallback = config_with(
        platform_config,
        {
            "routes": [
                {"when": {"hardware": "gpu"}, "queue": "gpu-shared"},
                {"when": {"hardware": "cpu"}, "queue": "cpu-shared"},
            ]
        },
    )
    found = codes(TRAIN, no_fallback)
    assert found[0][0] == "no_route"
    assert "no on-demand queue takes multi-node gpu jobs of team `vision`" in found[0][1]
    cpu = TRAIN.replace("gpus: 4", "gpus: 0").replace("memory_mib: 184320", "memory_mib: 65536")
    assert codes(cpu, platform_config)[0][0] == "no_route", "cpu-shared is spot; gpu-on-demand is no CPU queue"
    unsaid = config_with(
        platform_config,
        {
            "queues": {
                "cpu-fargate": {
                    "arn": "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-fargate",
                    "hardware": "cpu",
                    "max_vcpus": 16,
                    "max_memory_mib": 122880,
                    "price": {"vcpu_hour": 0.04},
                }
            },
            "routes": [
                {"when": {"hardware": "cpu"}, "queue": "cpu-fargate"},
                {"when": {"hardware": "gpu"}, "queue": "gpu-shared", "fallback": "gpu-on-demand"},
            ],
        },
    )
    assert codes(cpu.replace("vcpus: 48", "vcpus: 8"), unsaid)[0][0] == "no_route"


def test_nodes_need_a_multinode_definition_and_a_multinode_definition_needs_nodes(
    platform_config: PlatformConfig,
) -> None:
    found = codes(TRAIN.replace("job_definition: ddp", "job_definition: trainer"), platform_config)
    assert found == [
        (
            "not_multinode_definition",
            "`trainer` is not a multi-node job definition, and a job with `nodes` needs one (team `vision`'s: ddp)",
        )
    ]
    found = codes(TRAIN.replace("nodes: {count: 4}\n", ""), platform_config)
    assert found[0][0] == "multinode_definition_without_nodes"
    assert "add `nodes: {count: N}`" in found[0][1]


def test_nodes_are_not_an_array_nor_recovered_by_batchdrop(platform_config: PlatformConfig) -> None:
    found = codes(TRAIN + "array_size: 4\n", platform_config)
    assert (
        "nodes_and_array",
        "use either `nodes` or `array_size`: a multi-node job cannot be an array job or a sweep",
    ) in found
    found = codes(TRAIN + "sweep: {lr: ['0.1', '0.2']}\n", platform_config)
    assert any(code == "nodes_and_array" and "`sweep`" in message for code, message in found)
    found = codes(TRAIN + "retries: {attempts: 2, out_of_memory: {times: 1}}\n", platform_config)
    assert [code for code, _ in found] == ["nodes_without_recovery"]


def test_node_counts_out_of_range_and_nodes_at_the_top_of_a_pipeline_are_refused(
    platform_config: PlatformConfig,
) -> None:
    assert codes(TRAIN.replace("count: 4", "count: 1"), platform_config)[0][0] == "out_of_range"
    assert codes(TRAIN.replace("count: 4", "count: 1001"), platform_config)[0][0] == "out_of_range"
    pipeline = TRAIN + "steps:\n  - name: train\n"
    assert ("misplaced", "with `steps`, put `nodes` on the step that needs it, not at the top") in codes(
        pipeline, platform_config
    )


def test_every_node_must_fit_an_instance_and_all_of_them_the_environment(platform_config: PlatformConfig) -> None:
    found = codes(TRAIN.replace("vcpus: 48", "vcpus: 72"), platform_config)
    assert found[0][0] == "exceeds_queue"
    assert "largest instance of queue `gpu-on-demand` has 64" in found[0][1]
    found = codes(TRAIN.replace("count: 4", "count: 11"), platform_config)
    assert found == [
        (
            "exceeds_queue",
            "11 nodes × 48 vCPUs = 528 vCPUs; the environments of queue `gpu-on-demand` run at most 512 at once",
        )
    ]


def test_a_multinode_step_depends_on_and_is_depended_on_like_any_step(platform_config: PlatformConfig) -> None:
    path = EXAMPLES / "specs" / "ddp-training.yaml"
    plan = check_and_plan(path.read_bytes(), path.name, team="vision", config=platform_config, run_id=RUN_ID)
    assert [(job.step, job.queue, job.nodes, job.depends_on) for job in plan.jobs] == [
        ("prep", "cpu-shared", None, []),
        ("train", "gpu-on-demand", 4, ["prep"]),
        ("evaluate", "cpu-shared", None, ["train"]),
    ]
    assert plan.jobs[1].submit_request({"prep": "job-1"})["dependsOn"] == [{"jobId": "job-1"}]


def test_batch_limits_on_nodes_are_checked_before_the_call(platform_config: PlatformConfig) -> None:
    request = plan_of(TRAIN, platform_config).jobs[0].request
    assert batch_limit_violations(request) == []
    too_many = {**request, "nodeOverrides": {**request["nodeOverrides"], "numNodes": 1001}}
    assert batch_limit_violations(too_many) == ["1001 nodes; Batch runs 2 to 1,000 in one job"]
    both = {**request, "containerOverrides": {}, "arrayProperties": {"size": 2}}
    assert "a multi-node job with an array or container overrides, which Batch refuses" in batch_limit_violations(both)


def test_a_multinode_jobs_worst_case_counts_every_node(platform_config: PlatformConfig) -> None:
    plan = plan_of(TRAIN, platform_config)
    line = worst_case(plan).steps[0].lines[0]
    hourly = 4 * 3.06 + 48 * 0.034 + 180 * 0.0045
    assert line.usd == pytest.approx(4 * 1 * hourly)
    assert line.words.startswith("`main`: 4 nodes × 60 min × (4 GPUs at $3.06/GPU-hour")


def test_a_multinode_jobs_content_hash_leaves_out_its_run(platform_config: PlatformConfig) -> None:
    """Resume compares content hashes: the run id in every node's environment must not change it."""
    first = plan_of(TRAIN, platform_config).jobs[0]
    other = check_and_plan(TRAIN.encode(), "spec.yaml", team="vision", config=platform_config, run_id="b" * 20)
    assert first.content_hash == other.jobs[0].content_hash == content_hash(other.jobs[0].request, [])


def test_a_multinode_alias_must_be_one_of_the_teams_definitions(platform_config: PlatformConfig) -> None:
    document = yaml.safe_load((EXAMPLES / "platform.yaml").read_text())
    document["teams"]["vision"]["multinode_job_definitions"] = ["dpp"]
    with pytest.raises(ConfigInvalid) as caught:
        parse_platform_config(yaml.safe_dump(document).encode())
    assert [(problem.code, problem.message) for problem in caught.value.problems] == [
        ("unknown_job_definition", "no alias `dpp`")
    ]
