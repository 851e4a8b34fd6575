"""`batchdrop costs`: the months a window reads, totals and top spenders by team, spec and queue from the monthly
items, the table a person reads, and bad input refused in words."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from batchdrop.store.costs import MonthCost, Tally
from batchdrop_cli.costs import monthly_costs, months_since, parse_by, summary_json, summary_lines
from batchdrop_cli.operations import OperationFailed

NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


class Months:
    """The monthly items of a table, and which keys were asked for."""

    def __init__(self, *kept: MonthCost) -> None:
        self.kept = kept
        self.asked: list[tuple[str, str]] = []

    def months(self, teams: Iterable[str], months: Iterable[str]) -> list[MonthCost]:
        wanted = [(team, month) for team in teams for month in months]
        self.asked += wanted
        return [month for month in self.kept if (month.team, month.month) in wanted]


def tally(usd: float, jobs: int = 1, unpriced: int = 0, gpu: float = 0.0) -> Tally:
    return Tally(usd=usd, jobs=jobs, unpriced_jobs=unpriced, vcpu_hours=jobs * 2.0, gpu_hours=gpu)


VISION_OCT = MonthCost(
    team="vision",
    month="2026-10",
    total=tally(100.0, 3, gpu=50),
    by={"queue": {"gpu-shared": tally(100.0, 3, gpu=50)}, "spec": {"train": tally(90.0, 2), "prep": tally(10.0)}},
)
VISION_NOV = MonthCost(
    team="vision",
    month="2026-11",
    total=tally(40.0, 2),
    by={"queue": {"gpu-shared": tally(30.0), "cpu-shared": tally(10.0)}, "spec": {"train": tally(40.0, 2)}},
)
NLP_NOV = MonthCost(
    team="nlp",
    month="2026-11",
    total=tally(500.0, 1, unpriced=1),
    by={"queue": {"gpu-on-demand": tally(500.0, 1, unpriced=1)}, "spec": {"train": tally(500.0, 1, unpriced=1)}},
)


def test_a_window_reads_every_month_it_touches_and_says_the_first_is_counted_whole() -> None:
    months = Months(VISION_OCT, VISION_NOV, NLP_NOV)
    summary = monthly_costs(months, ["nlp", "vision"], "team", datetime(2026, 10, 31, tzinfo=UTC), NOW)

    assert months.asked == [("nlp", "2026-10"), ("nlp", "2026-11"), ("vision", "2026-10"), ("vision", "2026-11")]
    assert [(line.name, line.tally.usd) for line in summary.lines] == [("nlp", 500.0), ("vision", 140.0)]
    assert summary.total.usd == 640.0
    text = "\n".join(summary_lines(summary, top=10))
    assert "months are counted whole: from 2026-10-01 (2026-10 in full)" in text
    assert "read: 4 monthly totals (3 with costs)" in text


def test_a_window_from_a_months_first_moment_is_not_called_cut() -> None:
    summary = monthly_costs(Months(VISION_NOV), ["vision"], "team", datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert summary.whole_months_from is None
    assert "counted whole" not in "\n".join(summary_lines(summary, top=10))


def test_by_spec_names_each_teams_spec_and_by_queue_sums_across_teams() -> None:
    months = Months(VISION_OCT, VISION_NOV, NLP_NOV)
    since = datetime(2026, 10, 1, tzinfo=UTC)

    by_spec = monthly_costs(months, ["nlp", "vision"], "spec", since, NOW)
    assert [(line.name, line.tally.usd, line.tally.jobs) for line in by_spec.lines] == [
        ("nlp: train", 500.0, 1),
        ("vision: train", 130.0, 4),
        ("vision: prep", 10.0, 1),
    ]
    by_queue = monthly_costs(months, ["nlp", "vision"], "queue", since, NOW)
    assert [(line.name, line.tally.usd) for line in by_queue.lines] == [
        ("gpu-on-demand", 500.0),
        ("gpu-shared", 130.0),
        ("cpu-shared", 10.0),
    ]
    one_team = monthly_costs(months, ["vision"], "spec", since, NOW)
    assert [line.name for line in one_team.lines] == ["train", "prep"], "one team: its spec names alone"


def test_the_table_shows_the_top_spenders_and_says_how_many_more_and_what_has_no_price() -> None:
    months = Months(VISION_OCT, VISION_NOV, NLP_NOV)
    summary = monthly_costs(months, ["nlp", "vision"], "queue", datetime(2026, 10, 1, tzinfo=UTC), NOW)
    text = summary_lines(summary, top=2)

    assert text[0] == "costs of nlp, vision since 2026-10-01 00:00 UTC, by queue"
    rows = [line.split() for line in text if line.startswith(("gpu-", "cpu-", "total"))]
    assert rows[0][:3] == ["gpu-on-demand", "unknown", "1"], "a queue whose only job had no price"
    assert rows[1][:3] == ["gpu-shared", "$130.00", "4"]
    assert "… 1 more (--top 3 shows all)" in text
    assert rows[-1][:3] == ["total", "$640.00", "6"]
    assert "1 jobs ran on queues without prices: their hours, not dollars" in text


def test_no_costs_in_a_window_is_said_in_words() -> None:
    summary = monthly_costs(Months(), ["vision"], "team", datetime(2026, 11, 20, tzinfo=UTC), NOW)
    assert summary_lines(summary, top=10)[-1] == "no costs recorded in this window"
    assert summary_json(summary)["lines"] == []


def test_json_carries_the_window_the_months_and_every_line() -> None:
    summary = monthly_costs(Months(VISION_NOV), ["vision"], "spec", datetime(2026, 11, 15, tzinfo=UTC), NOW)
    document = summary_json(summary)
    assert document["by"] == "spec"
    assert document["months"] == ["2026-11"]
    assert document["counted_from"] == "2026-11-01T00:00:00+00:00"
    assert document["lines"] == [
        {
            "name": "train",
            "usd": 40.0,
            "jobs": 2,
            "unpriced_jobs": 0,
            "vcpu_hours": 4.0,
            "memory_gib_hours": 0.0,
            "gpu_hours": 0.0,
        }
    ]


def test_months_since_crosses_a_year() -> None:
    assert months_since(datetime(2025, 11, 20, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("team", ("team", None)), ("queue", ("queue", None)), ("tag:project", ("tag", "project"))],
)
def test_by_reads_a_grouping_or_a_tag(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_by(text) == expected


@pytest.mark.parametrize("text", ["teams", "tag:", "tag", "user"])
def test_a_bad_by_is_refused_in_words(text: str) -> None:
    with pytest.raises(OperationFailed, match="say team, spec, queue or tag:KEY"):
        parse_by(text)


def test_a_window_in_the_future_is_refused_in_words() -> None:
    with pytest.raises(OperationFailed, match="is in the future"):
        months_since(datetime(2027, 1, 1, tzinfo=UTC), NOW)
