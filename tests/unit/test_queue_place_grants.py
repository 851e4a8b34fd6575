"""The reconcile function may read the front of the platform's queues only (GetJobQueueSnapshot takes the
job-queue resource), and their compute environments where AWS allows no narrower grant."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_template_security import MADE_BATCH, RESOURCES, resolver


def reconcile_statements(made: str) -> dict[str, dict[str, Any]]:
    role = resolver(CreateBatchEnvironment=made).resolve(RESOURCES["ReconcileFunctionRole"]["Properties"])
    return {statement["Sid"]: statement for statement in role["Policies"][0]["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("made", ["false", "true"])
def test_queue_fronts_are_read_on_the_platforms_queues_only(made: str) -> None:
    fronts = reconcile_statements(made)["ReadQueueFronts"]
    assert fronts["Action"] == "batch:GetJobQueueSnapshot"
    if made == "true":
        assert fronts["Resource"] == [MADE_BATCH["CpuJobQueue"], MADE_BATCH["GpuJobQueue"]]
    else:
        assert fronts["Resource"] == ["arn:aws:batch:us-east-1:123456789012:job-queue/existing"]


def test_queue_environments_are_read_where_aws_has_no_resource_level_permission() -> None:
    environments = reconcile_statements("false")["ReadQueueEnvironments"]
    assert environments == {
        "Sid": "ReadQueueEnvironments",
        "Effect": "Allow",
        "Action": ["batch:DescribeJobQueues", "batch:DescribeComputeEnvironments"],
        "Resource": "*",
    }
