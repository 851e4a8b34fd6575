"""The Batch side a platform team owns, made in the emulator: the queues and job definitions
the platform config names, with the same ARNs.
"""

from __future__ import annotations

from batchdrop.platform.config import PlatformConfig
from batchdrop_local.emulator import EmbeddedAws

SERVICE_ROLE = "batchdrop-local-batch-service"


def job_definition_arns(config: PlatformConfig) -> list[str]:
    return sorted({arn for team in config.teams.values() for arn in team.job_definitions.values()})


def queue_arns(config: PlatformConfig) -> list[str]:
    return sorted(queue.arn for queue in config.queues.values())


def provision_batch(aws: EmbeddedAws, config: PlatformConfig) -> None:
    """Create a compute environment, every queue, and every job definition at its revision."""
    iam = aws.client("iam")
    role = iam.create_role(
        RoleName=SERVICE_ROLE,
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"batch.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    )["Role"]["Arn"]
    batch = aws.client("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="batchdrop-local", type="UNMANAGED", state="ENABLED", serviceRole=role
    )["computeEnvironmentArn"]
    for arn in queue_arns(config):
        batch.create_job_queue(
            jobQueueName=arn.rsplit("/", 1)[1],
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )
    for arn in job_definition_arns(config):
        name, _, revision = arn.rsplit("/", 1)[1].partition(":")
        for _ in range(int(revision or 1)):  # register until the revision the config names exists
            batch.register_job_definition(
                jobDefinitionName=name,
                type="container",
                containerProperties={
                    "image": f"public.ecr.aws/docker/library/python:3.13-slim#{name}",
                    "command": ["python", "-c", "print('hello from batchdrop')"],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
                },
            )
