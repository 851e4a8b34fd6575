"""`batchdrop report`: which records it reads (the recovered jobs too, histories only of jobs it draws,
children only of arrays), where it writes the page, and what it says when it cannot."""

from __future__ import annotations

import argparse
import json
import webbrowser
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from batchdrop.platform.config import QueuePrice
from batchdrop.report.records import RunNotFound, read_report_records
from batchdrop.store.items import Children
from batchdrop.store.records import JobRecord, RunRecord, SubmittedJobRef
from batchdrop_cli import reports
from batchdrop_cli.main import main
from batchdrop_cli.operations import OperationFailed
from tests import report_scenarios
from tests.report_scenarios import SWEEP, Scenario


@dataclass
class Table:
    """The records of one scenario, as `RecordQueries` reads them; the jobs' histories are kept apart."""

    scenario: Scenario
    table_name: str = "records"
    client: object = None
    asked_jobs: list[set[str]] = field(default_factory=list)
    histories_read: list[str] = field(default_factory=list)
    sweeps_read: list[set[str]] = field(default_factory=list)
    children_read: list[str] = field(default_factory=list)

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.scenario.run if run_id == self.scenario.run.run_id else None

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        """As the table has them: without their histories and sweeps (items of their own)."""
        wanted = set(job_ids)
        self.asked_jobs.append(wanted)
        return {
            job.job_id: job.model_copy(update={"history": {}, "sweep": None})
            for job in self.scenario.jobs
            if job.job_id in wanted
        }

    def get_jobs_with_sweeps(self, job_ids: Iterable[str], sweeps_of: Iterable[str]) -> dict[str, JobRecord]:
        """The same read, with the sweeps kept beside the jobs of `sweeps_of`."""
        with_sweeps = set(sweeps_of)
        self.sweeps_read.append(with_sweeps)
        stored = {job.job_id: job.sweep for job in self.scenario.jobs}
        return {
            job_id: job.model_copy(update={"sweep": stored[job_id] if job_id in with_sweeps else None})
            for job_id, job in self.get_jobs(job_ids).items()
        }

    def with_history(self, job: JobRecord) -> JobRecord:
        self.histories_read.append(job.job_id)
        stored = next(item for item in self.scenario.jobs if item.job_id == job.job_id)
        return job.model_copy(update={"history": stored.history})

    def get_children(self, parent_id: str) -> Children:
        self.children_read.append(parent_id)
        return self.scenario.children.get(parent_id, Children())


def test_a_report_reads_the_jobs_recoveries_replaced_and_no_history_of_a_reused_step() -> None:
    table = Table(report_scenarios.pipeline())
    records = read_report_records(table, table, "run-pipeline")
    assert {job.job_id for job in records.jobs} == {"prep-0", "train-1", "train-2", "evaluate-1", "evaluate-2"}
    assert table.asked_jobs == [{"prep-0", "train-2", "evaluate-2"}, {"train-1", "evaluate-1"}]
    assert sorted(table.histories_read) == ["evaluate-1", "evaluate-2", "train-1", "train-2"]
    assert table.children_read == []  # no arrays


def test_a_sweeps_report_reads_its_childrens_states() -> None:
    table = Table(report_scenarios.sweep())
    records = read_report_records(table, table, "run-sweep")
    assert table.children_read == ["sweep-1"]
    assert len(records.children["sweep-1"].states) == 2_000


def test_a_sweeps_report_reads_its_axes_and_values_with_its_jobs_and_gives_them_to_the_jobs_it_replaced() -> None:
    scenario = report_scenarios.sweep()
    (first,) = scenario.jobs
    recovery = first.model_copy(
        update={"job_id": "sweep-2", "recovers": "sweep-1", "array_size": 3, "child_indices": "3,7-8"}
    )
    scenario.jobs = [first.model_copy(update={"sweep": None}), recovery]  # only the current job's item is read
    scenario.run = scenario.run.model_copy(update={"jobs": [SubmittedJobRef.of(recovery)]})
    table = Table(scenario)
    records = read_report_records(table, table, "run-sweep")
    assert table.asked_jobs == [{"sweep-2"}, {"sweep-1"}], "no read more than before: the sweep comes with its job"
    assert table.sweeps_read == [{"sweep-2"}]
    assert {job.job_id: job.sweep for job in records.jobs} == {"sweep-1": SWEEP, "sweep-2": SWEEP}


def test_a_reused_steps_sweep_is_not_read() -> None:
    scenario = report_scenarios.sweep()
    ref = scenario.run.jobs[0].model_copy(update={"reused_from": "run-earlier"})
    scenario.run = scenario.run.model_copy(update={"jobs": [ref]})
    table = Table(scenario)
    (job,) = read_report_records(table, table, "run-sweep").jobs
    assert table.sweeps_read == [set()]
    assert job.sweep is None


def test_an_unknown_run_is_said_in_words() -> None:
    table = Table(report_scenarios.sweep())
    with pytest.raises(RunNotFound, match="no run 'nope' in table records"):
        read_report_records(table, table, "nope")


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Table:
    """`batchdrop report`'s stack, with the pipeline's records in its table."""
    table = Table(report_scenarios.pipeline())

    class Stack:
        def __init__(self, args: argparse.Namespace) -> None:
            self.table = table

    monkeypatch.setattr(reports, "Stack", Stack)
    monkeypatch.setattr(reports, "JobStates", lambda client, table_name: table)
    return table


def arguments(**given: Any) -> argparse.Namespace:
    return argparse.Namespace(**({"run_id": "run-pipeline", "output": None, "open": False, "json": False} | given))


def test_report_writes_the_page_beside_you_and_prints_its_path(
    stack: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert reports._report(arguments()) == 0
    assert capsys.readouterr().out.strip() == "run-pipeline.report.html"
    page = (tmp_path / "run-pipeline.report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "recovered by job train-2" in page


def test_report_output_open_and_json(
    stack: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[str] = []

    def open_page(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", open_page)
    target = tmp_path / "run.html"
    assert reports._report(arguments(output=str(target), open=True, json=True)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["report"] == str(target)
    assert printed["bytes"] == target.stat().st_size
    assert opened == [target.resolve().as_uri()]


def test_report_says_when_no_browser_opens_it(
    stack: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    reports._report(arguments(output=str(tmp_path / "run.html"), open=True))
    assert "no web browser found here" in capsys.readouterr().out


def test_report_to_a_place_it_cannot_write_is_said_in_words(stack: Table, tmp_path: Path) -> None:
    with pytest.raises(OperationFailed, match="cannot write the report to"):
        reports._report(arguments(output=str(tmp_path / "no-such-folder" / "run.html")))


def test_batchdrop_report_is_a_command(stack: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "run.html"
    assert main(["report", "run-pipeline", "--output", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert main(["report", "nope", "--output", str(target)]) == 2
    assert "no run 'nope' in table records" in capsys.readouterr().err


def test_report_shows_costs_where_the_jobs_queues_have_prices(
    stack: Table, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    price = QueuePrice(vcpu_hour=0.04, gib_hour=0.005, gpu_hour=3.0)
    stack.scenario.jobs = [job.model_copy(update={"price": price}) for job in stack.scenario.jobs]
    target = tmp_path / "run.html"
    reports._report(arguments(output=str(target)))
    page = target.read_text()
    assert "Cost (est.)" in page
    assert "$0.17" in page  # train-1: 2.87 vCPU-h × $0.04 + 11.47 GiB-h × $0.005


def test_report_shows_no_cost_where_no_queue_has_prices(stack: Table, tmp_path: Path) -> None:
    target = tmp_path / "run.html"
    reports._report(arguments(output=str(target)))
    assert "Cost" not in target.read_text()
