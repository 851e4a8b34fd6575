"""The published event contract: docs/events/*.schema.json are current, and real messages match them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from batchdrop_local.event_schemas import EVENT_MODELS, event_schema, main, stale_schemas
from batchdrop_local.template import load_template
from jsonschema import Draft202012Validator

from batchdrop.events.contract import JobStatusChanged
from batchdrop.notify.notifier import read_event
from tests.conftest import EVENTS, ROOT
from tests.unit.test_slack import EVENTS as RENDERED_EVENTS

SCHEMAS = ROOT / "docs" / "events"
NOTIFICATIONS_DOC = ROOT / "docs" / "notifications.md"
SNS_EXAMPLES = sorted((EVENTS / "notify").glob("sns-*.json"))


def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_committed_schemas_are_current() -> None:
    stale = stale_schemas(SCHEMAS)
    assert stale == [], "regenerate with: .venv/bin/python -m batchdrop_local.event_schemas"
    assert sorted(path.name for path in SCHEMAS.glob("*.schema.json")) == sorted(
        f"{event_type}.schema.json" for event_type in EVENT_MODELS
    )


def test_the_module_writes_and_checks_the_files(tmp_path: Path) -> None:
    assert main(["--check", str(tmp_path)]) == 1, "nothing written yet"
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "job.stuck.schema.json").read_text()) == event_schema("job.stuck")


@pytest.mark.parametrize("example", SNS_EXAMPLES, ids=lambda path: path.name)
def test_the_sns_examples_carry_messages_that_match_their_schema(example: Path) -> None:
    (record,) = json.loads(example.read_text())["Records"]
    message = json.loads(record["Sns"]["Message"])
    errors = list(validator(message["type"]).iter_errors(message))
    assert errors == []
    event = read_event(record["Sns"]["Message"])
    assert event is not None
    attributes = {name: value["Value"] for name, value in record["Sns"]["MessageAttributes"].items()}
    assert attributes == event.attributes()


@pytest.mark.parametrize("name", sorted(RENDERED_EVENTS))
def test_every_published_body_matches_its_schema(name: str) -> None:
    event = RENDERED_EVENTS[name]
    body: dict[str, Any] = json.loads(event.body())
    assert list(validator(event.type).iter_errors(body)) == []


def test_fields_without_a_value_are_left_out_not_null() -> None:
    schema = event_schema("job.status")
    assert "exit_code" not in schema["required"]
    assert {"schema", "type", "event_id", "team", "status", "log_links", "notify_on"} <= set(schema["required"])
    assert schema["properties"]["exit_code"] == {"title": "Exit Code", "type": "integer"}
    body = json.loads(RENDERED_EVENTS["failed-out-of-memory"].body())
    assert list(validator("job.status").iter_errors({**body, "exit_code": None})), "never null: absent instead"


def filter_policy_in_docs() -> dict[str, list[str]]:
    blocks = re.findall(r"```json\n(.*?)```", NOTIFICATIONS_DOC.read_text(), flags=re.DOTALL)
    policies = [json.loads(block) for block in blocks if '"type": ["job.status"]' in block]
    assert len(policies) == 1, "docs/notifications.md shows one filter policy for failed jobs"
    return policies[0]  # type: ignore[no-any-return]


def matches(policy: dict[str, list[Any]], attributes: dict[str, str]) -> bool:
    """SNS's rule for exact-match string policies: every key present, its value one of those listed; and
    `{"exists": false}`: the attribute absent."""

    def allows(key: str, allowed: list[Any]) -> bool:
        if {"exists": False} in allowed:
            return key not in attributes
        return attributes.get(key) in allowed

    return all(allows(key, allowed) for key, allowed in policy.items())


def test_the_stacks_failure_emails_are_of_final_failures_only() -> None:
    policy = load_template()["Resources"]["FailureEmails"]["Properties"]["FilterPolicy"]
    failed = RENDERED_EVENTS["failed-out-of-memory"]
    assert isinstance(failed, JobStatusChanged)
    assert matches(policy, failed.attributes())
    assert not matches(policy, failed.model_copy(update={"recovering": True}).attributes()), "being replaced"


def test_the_documented_filter_policy_selects_failed_production_jobs_of_vision() -> None:
    policy = filter_policy_in_docs()
    assert policy == {"team": ["vision"], "environment": ["production"], "type": ["job.status"], "status": ["failed"]}
    failed = RENDERED_EVENTS["failed-out-of-memory"]
    assert isinstance(failed, JobStatusChanged)
    production = failed.model_copy(update={"environment": "production"})
    assert matches(policy, production.attributes())
    assert not matches(policy, failed.attributes()), "adhoc"
    assert not matches(policy, production.model_copy(update={"team": "forecasting"}).attributes())
    assert not matches(policy, production.model_copy(update={"status": "succeeded"}).attributes())
    assert not matches(policy, RENDERED_EVENTS["stuck"].model_copy(update={"environment": "production"}).attributes())
