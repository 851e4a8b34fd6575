"""What the account has for the platform config, read only: Batch's job queues, compute environments,
scheduling policies and job definitions, and EC2's instance types (docs/platform-check.md).

A compute environment's `instanceTypes` may name sizes (`g5.12xlarge`), families (`p3`: every size)
or Batch's bundles: `optimal` (since November 2025 the same as `default_x86_64`: the m6i, c6i, r6i and
c7i families; before, c4, m4, r4, c5, m5 and r5), `default_x86_64` and `default_arm64` (m6g, c6g, r6g,
c7g). Families are expanded with DescribeInstanceTypes' `instance-type` filter (`p3.*`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop.errors import BatchdropError
from batchdrop.platform.drift import Account, ComputeEnvironment, InstanceType, JobDefinition, JobQueue

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

BUNDLES = {
    "optimal": ("m6i", "c6i", "r6i", "c7i"),
    "default_x86_64": ("m6i", "c6i", "r6i", "c7i"),
    "default_arm64": ("m6g", "c6g", "r6g", "c7g"),
}
"""Batch's instance bundles as the families they launch from (the AWS Batch API reference, ComputeResource)."""
PAGE = 100
"""The most names one Describe call takes."""


class AccountUnreadable(BatchdropError):
    """Batch or EC2 refused or failed a read (most often a missing permission)."""


@contextmanager
def _reading(call: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AccountUnreadable(f"{call} failed: {error.get('Code')}: {error.get('Message', str(exc))}") from exc
    except BotoCoreError as exc:
        raise AccountUnreadable(f"{call} failed: {exc}") from exc


def _pages(call: Callable[..., Any], key: str, next_key: str = "nextToken", **arguments: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        page = call(**arguments)
        items += page.get(key, [])
        if not page.get(next_key):
            return items
        arguments[next_key] = page[next_key]


def instance_filters(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(sizes, family wildcards) for DescribeInstanceTypes, from an environment's `instanceTypes`."""
    sizes: set[str] = set()
    families: set[str] = set()
    for name in names:
        if name in BUNDLES:
            families.update(f"{family}.*" for family in BUNDLES[name])
        elif "." in name:
            sizes.add(name)
        else:
            families.add(f"{name}.*")
    return sorted(sizes), sorted(families)


class AccountGateway:
    """Reads only: every call here is a Describe."""

    def __init__(self, batch: BatchClient, ec2: Any) -> None:
        self.batch = batch
        self.ec2 = ec2
        self._instances: dict[tuple[str, ...], tuple[InstanceType, ...]] = {}

    def account_for(self, queue_arns: Sequence[str], definitions: Sequence[str]) -> Account:
        """The queues (by ARN) and job definitions (by the config's reference) the account has of these."""
        return Account(
            queues={queue.arn: queue for queue in self.job_queues(queue_arns)},
            definitions={
                reference: found
                for reference in dict.fromkeys(definitions)
                if (found := self.job_definition(reference)) is not None
            },
        )

    def job_queues(self, arns: Sequence[str] | None = None) -> list[JobQueue]:
        """These queues (every queue of the account with None), with their compute environments."""
        described: list[dict[str, Any]] = []
        with _reading("batch:DescribeJobQueues"):
            if arns is None:
                described = _pages(self.batch.describe_job_queues, "jobQueues")
            for start in range(0, len(arns or []), PAGE):
                chunk = list(arns or [])[start : start + PAGE]
                described += _pages(self.batch.describe_job_queues, "jobQueues", jobQueues=chunk)
        environment_arns = sorted(
            {entry["computeEnvironment"] for queue in described for entry in queue.get("computeEnvironmentOrder", [])}
        )
        environments = self._environments(environment_arns)
        policies = self._policies(
            sorted({queue["schedulingPolicyArn"] for queue in described if queue.get("schedulingPolicyArn")})
        )
        queues: list[JobQueue] = []
        for queue in described:
            order = sorted(queue.get("computeEnvironmentOrder", []), key=lambda entry: entry.get("order", 0))
            queues.append(
                JobQueue(
                    arn=queue["jobQueueArn"],
                    name=queue["jobQueueName"],
                    state=queue.get("state", ""),
                    status=queue.get("status", ""),
                    scheduling_policy_arn=queue.get("schedulingPolicyArn")
                    if queue.get("schedulingPolicyArn") in policies
                    else None,
                    environments=tuple(
                        environments[entry["computeEnvironment"]]
                        for entry in order
                        if entry["computeEnvironment"] in environments
                    ),
                )
            )
        return queues

    def _policies(self, arns: Sequence[str]) -> set[str]:
        """Of these scheduling policies, those that exist (a queue may name one deleted since)."""
        found: set[str] = set()
        with _reading("batch:DescribeSchedulingPolicies"):
            for start in range(0, len(arns), PAGE):
                described = self.batch.describe_scheduling_policies(arns=list(arns[start : start + PAGE]))
                found.update(policy["arn"] for policy in described.get("schedulingPolicies", []))
        return found

    def _environments(self, arns: Sequence[str]) -> dict[str, ComputeEnvironment]:
        described: list[dict[str, Any]] = []
        with _reading("batch:DescribeComputeEnvironments"):
            for start in range(0, len(arns), PAGE):
                described += _pages(
                    self.batch.describe_compute_environments,
                    "computeEnvironments",
                    computeEnvironments=list(arns[start : start + PAGE]),
                )
        found: dict[str, ComputeEnvironment] = {}
        for environment in described:
            resources = environment.get("computeResources") or {}
            kind = resources.get("type") if environment.get("type") == "MANAGED" else None
            environment_facts = ComputeEnvironment(
                arn=environment["computeEnvironmentArn"],
                name=environment["computeEnvironmentName"],
                state=environment.get("state", ""),
                status=environment.get("status", ""),
                kind=kind,
                max_vcpus=resources.get("maxvCpus"),
                instance_types=self.instance_types(resources.get("instanceTypes", [])) if kind else (),
                orchestration=environment.get("containerOrchestrationType", "ECS"),
            )
            found[environment_facts.arn] = environment_facts
            # Both names of an environment find it: a queue's order may give either.
            found[environment_facts.name] = environment_facts
        return found

    def instance_types(self, names: Sequence[str]) -> tuple[InstanceType, ...]:
        """Every instance type these names allow (sizes, families and bundles expanded)."""
        key = tuple(sorted(names))
        if key in self._instances:
            return self._instances[key]
        sizes, families = instance_filters(names)
        described: list[dict[str, Any]] = []
        with _reading("ec2:DescribeInstanceTypes"):
            for start in range(0, len(sizes), PAGE):
                described += _pages(
                    self.ec2.describe_instance_types,
                    "InstanceTypes",
                    "NextToken",
                    InstanceTypes=sizes[start : start + PAGE],
                )
            if families:
                described += _pages(
                    self.ec2.describe_instance_types,
                    "InstanceTypes",
                    "NextToken",
                    Filters=[{"Name": "instance-type", "Values": families}],
                )
        found = tuple(
            InstanceType(
                name=item["InstanceType"],
                vcpus=int(item.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
                memory_mib=int(item.get("MemoryInfo", {}).get("SizeInMiB", 0)),
                gpus=sum(int(gpu.get("Count", 0)) for gpu in item.get("GpuInfo", {}).get("Gpus", [])),
            )
            for item in {item["InstanceType"]: item for item in described}.values()
        )
        self._instances[key] = found
        return found

    def job_definition(self, reference: str) -> JobDefinition | None:
        """The definition a config's reference names (with a revision: that one; without: the latest
        ACTIVE), or None when the account has none."""
        name = reference.rsplit("/", 1)[-1]
        with _reading("batch:DescribeJobDefinitions"):
            if ":" in name:
                revisions = _pages(self.batch.describe_job_definitions, "jobDefinitions", jobDefinitions=[reference])
            else:
                revisions = _pages(
                    self.batch.describe_job_definitions, "jobDefinitions", jobDefinitionName=name, status="ACTIVE"
                )
        newest = max(revisions, key=lambda revision: int(revision.get("revision", 0)), default=None)
        return None if newest is None else definition_facts(newest)

    def latest_definitions(self) -> list[JobDefinition]:
        """The newest ACTIVE revision of every job definition of the account."""
        with _reading("batch:DescribeJobDefinitions"):
            described = _pages(self.batch.describe_job_definitions, "jobDefinitions", status="ACTIVE")
        newest: dict[str, dict[str, Any]] = {}
        for revision in described:
            kept = newest.get(revision["jobDefinitionName"])
            if kept is None or int(revision["revision"]) > int(kept["revision"]):
                newest[revision["jobDefinitionName"]] = revision
        return [definition_facts(newest[name]) for name in sorted(newest)]


def definition_facts(described: dict[str, Any]) -> JobDefinition:
    return JobDefinition(
        arn=described["jobDefinitionArn"],
        name=described["jobDefinitionName"],
        revision=int(described.get("revision", 0)),
        status=described.get("status", ""),
        type=described.get("type", "container"),
        platforms=tuple(described.get("platformCapabilities") or ["EC2"]),
        orchestration="EKS" if described.get("eksProperties") else "ECS",
    )
