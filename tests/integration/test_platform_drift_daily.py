"""The daily platform check on the local stack, over HTTP with real boto3 clients: the reconcile function,
invoked as its daily schedule invokes it, compares the stack's platform config with the account; a day they
disagree is recorded once and told as `platform.drift` by the publish function (the outbox)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchdrop_local.runtime import invoke, load_handler

from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

TRAINER = "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3"


def _daily_check(local_stack: LocalStack) -> Any:
    function = local_stack.stack.functions["ReconcileFunction"]
    (schedule,) = [event["Properties"] for event in function.events.values() if "Input" in event.get("Properties", {})]
    assert schedule["Schedule"] == "rate(1 day)"
    return invoke(function, load_handler(function), json.loads(schedule["Input"]))


def test_a_day_the_account_agrees_tells_nothing(local_stack: LocalStack) -> None:
    assert _daily_check(local_stack) == {"PlatformDriftErrors": 0, "PlatformDriftWarnings": 0}
    assert [event for event in local_stack.published_events() if event["body"]["type"] == "platform.drift"] == []


def test_a_deregistered_job_definition_is_told_once_a_day_as_platform_drift(local_stack: LocalStack) -> None:
    local_stack.client("batch").deregister_job_definition(jobDefinition=TRAINER)
    assert _daily_check(local_stack) == {"PlatformDriftErrors": 1, "PlatformDriftWarnings": 0}
    assert _daily_check(local_stack)["PlatformDriftErrors"] == 1, "checked again the same day"
    told = [event for event in local_stack.published_events() if event["body"]["type"] == "platform.drift"]
    assert len(told) == 1, "told once a day"
    body, attributes = told[0]["body"], told[0]["attributes"]
    assert (body["status"], body["error_count"], body["warning_count"]) == ("error", 1, 0)
    assert body["findings"] == [
        {
            "subject": "job definition",
            "name": "vision/trainer",
            "check": "exists",
            "severity": "error",
            "detail": "vision-trainer:3 is INACTIVE",
        }
    ]
    assert attributes["type"] == "platform.drift"
