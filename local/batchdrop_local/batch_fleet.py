"""The Batch side a platform team owns, made in the emulator: the queues and job definitions
the platform config names, with the same ARNs, each queue on a compute environment of the
capacity the config says (`capacity: spot` a SPOT one, else on-demand EC2): the local Batch
reclaims jobs only on spot capacity. Each environment launches the instance types of
`EXAMPLE_INSTANCE_TYPES` (the example's queues: their largest instances are the config's maxima, so
`batchdrop platform check` passes) or, for other queues, its hardware's default; a fair-share queue
has a scheduling policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchdrop.platform.config import PlatformConfig
from batchdrop_local.emulator import EmbeddedAws

SERVICE_ROLE = "batchdrop-local-batch-service"
INSTANCE_PROFILE = "batchdrop-local-batch-instance"
EXAMPLE_INSTANCE_TYPES: Mapping[str, Sequence[str]] = {
    "cpu-shared": ["m6i.24xlarge"],  # 96 vCPUs, 384 GiB
    "gpu-shared": ["g5.12xlarge", "g5.16xlarge"],  # 4 GPUs on the first, 64 vCPUs and 256 GiB on the second
    "gpu-on-demand": ["g5.12xlarge", "g5.16xlarge"],
    "gpu-vision-prod": ["p4d.24xlarge"],  # 96 vCPUs, 1,152 GiB, 8 A100s
}
"""The instance types of the example config's queues' compute environments (examples/platform.yaml)."""
DEFAULT_INSTANCE_TYPES: Mapping[str, Sequence[str]] = {"cpu": ["optimal"], "gpu": ["g5"]}


def job_definition_arns(config: PlatformConfig) -> list[str]:
    return sorted({arn for team in config.teams.values() for arn in team.job_definitions.values()})


def queue_arns(config: PlatformConfig) -> list[str]:
    return sorted(queue.arn for queue in config.queues.values())


def provision_batch(
    aws: EmbeddedAws, config: PlatformConfig, instance_types: Mapping[str, Sequence[str]] = EXAMPLE_INSTANCE_TYPES
) -> None:
    """Create each queue on its own compute environment launching `instance_types[queue]` (by default
    its hardware's), a fair-share queue with a scheduling policy, and every job definition at its revision."""
    iam = aws.client("iam")
    try:
        role = iam.create_role(
            RoleName=SERVICE_ROLE,
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Principal":{"Service":"batch.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
        )["Role"]["Arn"]
        instance_role = iam.create_instance_profile(InstanceProfileName=INSTANCE_PROFILE)["InstanceProfile"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:  # provisioned before: more queues are added
        role = iam.get_role(RoleName=SERVICE_ROLE)["Role"]["Arn"]
        instance_role = iam.get_instance_profile(InstanceProfileName=INSTANCE_PROFILE)["InstanceProfile"]["Arn"]
    ec2 = aws.client("ec2")
    subnets = [subnet["SubnetId"] for subnet in ec2.describe_subnets()["Subnets"]][:1]
    groups = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    batch = aws.client("batch")
    for name, queue in sorted(config.queues.items()):
        environment = batch.create_compute_environment(
            computeEnvironmentName=f"batchdrop-local-{name}",
            type="MANAGED",
            state="ENABLED",
            serviceRole=role,
            computeResources={
                "type": "SPOT" if queue.capacity == "spot" else "EC2",
                "minvCpus": 0,  # no instance is started
                "maxvCpus": int(queue.max_vcpus),
                "instanceTypes": list(instance_types.get(name, DEFAULT_INSTANCE_TYPES[queue.hardware])),
                "instanceRole": instance_role,
                "subnets": subnets,
                "securityGroupIds": [groups[0]["GroupId"]],
            },
        )["computeEnvironmentArn"]
        fair_share = (
            {
                "schedulingPolicyArn": batch.create_scheduling_policy(
                    name=f"batchdrop-local-{name}", fairsharePolicy={"shareDecaySeconds": 3600}
                )["arn"]
            }
            if queue.fair_share
            else {}
        )
        batch.create_job_queue(
            jobQueueName=queue.arn.rsplit("/", 1)[1],
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
            **fair_share,
        )
    multinode = {
        team.job_definitions[alias] for team in config.teams.values() for alias in team.multinode_job_definitions
    }
    for arn in job_definition_arns(config):
        name, _, revision = arn.rsplit("/", 1)[1].partition(":")
        container = {
            "image": f"public.ecr.aws/docker/library/python:3.13-slim#{name}",
            "command": ["python", "-c", "print('hello from batchdrop')"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        }
        # a multi-node definition: one node range, `0:`, so a spec's node count covers every node
        shape: dict[str, Any] = (
            {
                "type": "multinode",
                "nodeProperties": {
                    "numNodes": 2,
                    "mainNode": 0,
                    "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
                },
            }
            if arn in multinode
            else {"type": "container", "containerProperties": container}
        )
        for _ in range(int(revision or 1)):  # register until the revision the config names exists
            batch.register_job_definition(jobDefinitionName=name, **shape)
