"""`team.budget` (docs/budgets.md): told from a team month's markers as the stream hands them over, once
per crossing; posted to the team's Slack always, with its message kept as a golden payload."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from batchdrop.events.contract import EVENT_ADAPTER, TeamBudget
from batchdrop.notify.notifier import is_wanted
from batchdrop.notify.slack_blocks import render
from batchdrop.publish.teller import RecordChange
from tests.conftest import ROOT
from tests.unit.test_telling import FakePublisher, teller

GOLDEN = ROOT / "tests" / "golden" / "slack" / "budget"
AT = datetime(2026, 11, 23, 21, 40, 12, tzinfo=UTC)
SOURCE = "s3://batchdrop-jobs-123456789012-us-east-1-dev/incoming/vision/lr-grid.yaml"


def month(**markers: dict[str, Any]) -> dict[str, Any]:
    """A team-month item as the stream hands it over (plain attributes)."""
    item: dict[str, Any] = {
        "PK": "COST#vision",
        "SK": "MONTH#2026-11",
        "kind": "team_month",
        "team": "vision",
        "month": "2026-11",
        "usd": 16_500.0,
        "jobs": 1200,
    }
    for marker, crossed in markers.items():
        item[marker] = crossed
        item[f"{marker}_usd"] = 16_120.4
    return item


def crossed(threshold: float = 16_000.0) -> dict[str, Any]:
    return {
        "at": AT.isoformat(),
        "monthly_usd": 20_000.0,
        "warn_at": 0.8,
        "threshold_usd": threshold,
        "run_id": "q3k2v5xj7c4mzrh2ydwa",
        "source_uri": SOURCE,
        "spec_name": "lr-grid",
    }


def told(old: dict[str, Any], new: dict[str, Any]) -> list[TeamBudget]:
    publisher = FakePublisher()
    result = teller(publisher).tell([RecordChange(change_id="1", old=old, new=new)])
    assert result.failed == []
    return [event for event in publisher.published if isinstance(event, TeamBudget)]


def test_a_month_that_just_crossed_its_warning_level_tells_one_team_budget_with_its_numbers() -> None:
    (event,) = told(month(), month(budget_warned=crossed()))

    assert (event.type, event.status, event.team, event.month) == ("team.budget", "warning", "vision", "2026-11")
    assert (event.spent_usd, event.monthly_usd, event.threshold_usd, event.warn_at) == (16_120.4, 20_000.0, 16_000, 0.8)
    assert (event.run_id, event.spec_name, event.source_uri) == ("q3k2v5xj7c4mzrh2ydwa", "lr-grid", SOURCE)
    assert event.attributes()["type"] == "team.budget"
    assert EVENT_ADAPTER.validate_json(event.body()) == event


def test_the_same_crossing_handed_over_again_has_the_same_event_id_and_a_later_write_tells_nothing() -> None:
    first = told(month(), month(budget_warned=crossed()))
    again = told(month(), month(budget_warned=crossed()))  # the stream handed the change over twice

    assert [event.event_id for event in first] == [event.event_id for event in again]
    assert told(month(budget_warned=crossed()), month(budget_warned=crossed())) == [], "a later cost added"


def test_crossing_the_budget_itself_is_told_as_exceeded_and_not_the_warning_again() -> None:
    (event,) = told(month(budget_warned=crossed()), month(budget_warned=crossed(), budget_exceeded=crossed(20_000)))

    assert event.status == "exceeded"
    assert event.threshold_usd == 20_000


def test_a_month_without_markers_tells_nothing() -> None:
    assert told(month(), month()) == []


# ---------------------------------------------------------------- Slack

EVENTS = {
    "team-budget-warning": TeamBudget(
        event_id="b" * 32,
        time=AT,
        team="vision",
        run_id="q3k2v5xj7c4mzrh2ydwa",
        spec_name="lr-grid",
        source_uri=SOURCE,
        status="warning",
        month="2026-11",
        spent_usd=16_120.4,
        monthly_usd=20_000.0,
        threshold_usd=16_000.0,
        warn_at=0.8,
    ),
    "team-budget-exceeded": TeamBudget(
        event_id="c" * 32,
        time=AT,
        team="vision",
        run_id="q3k2v5xj7c4mzrh2ydwa",
        spec_name="lr-grid",
        source_uri=SOURCE,
        status="exceeded",
        month="2026-11",
        spent_usd=20_311.0,
        monthly_usd=20_000.0,
        threshold_usd=20_000.0,
        warn_at=0.8,
    ),
}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_budget_payload_matches_golden(name: str) -> None:
    payload = render(EVENTS[name]).payload()
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    assert payload == json.loads(golden.read_text()), f"regenerate with UPDATE_GOLDEN=1 if intended: {golden}"


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_slack_accepts_the_budget_blocks_and_the_team_always_hears(name: str) -> None:
    message = render(EVENTS[name])
    assert message.blocks[0]["type"] == "header"
    for block in Block.parse_all(message.blocks):
        assert block is not None
        block.to_dict()
    assert is_wanted(EVENTS[name])


def test_the_warning_says_what_is_left_and_what_happens_to_runs() -> None:
    text = json.dumps(render(EVENTS["team-budget-warning"]).blocks, ensure_ascii=False)

    assert "is past 80% of its monthly budget" in text
    assert "*$16,120.40* of its *$20,000.00* for *2026-11*" in text
    assert "what is left (*$3,879.60*) will be rejected" in text
