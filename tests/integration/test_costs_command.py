"""`batchdrop costs` against the whole control plane on the embedded AWS, as a user types it: totals by team,
spec and queue from the monthly items, and by a tag from the runs and their spec files; every AWS call it
makes is one the stack's OperatorPolicy grants (the `Cli` harness checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchdrop.platform.costs import cost_of, money_words
from batchdrop.store.costs import JobCost, TeamCosts
from batchdrop.store.queries import RecordQueries
from tests.integration.operator_cli import Cli, spec_file
from tests.integration.test_operator_cli import plane  # noqa: F401 (its control plane, a fixture)

pytestmark = pytest.mark.integration

TAGGED_SPEC = """\
version: 1
name: costs-tagged
team: vision
job_definition: trainer
tags: {{project: {project}}}
command: [python, report.py]
resources: {{vcpus: 2, memory_mib: 4096}}
"""


def _ran(run: Cli, tmp_path: Path, name: str, project: str) -> str:
    code, out, err = run("submit", spec_file(tmp_path, name, TAGGED_SPEC.format(project=project)), "--wait")
    assert code == 0, err
    return out.split("✓ run ")[1].split(":")[0]


def test_costs_by_team_spec_queue_and_tag(cli: Cli, tmp_path: Path) -> None:
    runs = [_ran(cli, tmp_path, "costs-a", "vision-2027"), _ran(cli, tmp_path, "costs-b", "atlas")]
    table: RecordQueries = cli.plane.table
    found = [table.get_run(run_id) for run_id in runs]
    jobs = [job for run in found if run for job in table.get_jobs(ref.job_id for ref in run.jobs).values()]
    ledger = TeamCosts(table.client, table.table_name)
    for job in jobs:  # as the track function counts them (a job it counted already is not added again)
        ledger.count(JobCost.of(job))
    cli.calls.clear()  # the counting is the track function's, not the command's
    usd = {job.run_id: cost_of(job) or 0.0 for job in jobs}
    assert all(cost > 0 for cost in usd.values())

    by_team = cli.json("costs", "--team", "vision")
    assert by_team["by"] == "team"
    assert [line["name"] for line in by_team["lines"]] == ["vision"]
    assert by_team["total"]["usd"] == pytest.approx(sum(usd.values()))
    assert by_team["total"]["jobs"] == 2

    by_spec = cli.json("costs", "--team", "vision", "--by", "spec")
    assert {line["name"] for line in by_spec["lines"]} == {"costs-tagged"}
    by_queue = cli.json("costs", "--team", "vision", "--by", "queue")
    assert [line["name"] for line in by_queue["lines"]] == ["cpu-shared"]

    by_tag = cli.json("costs", "--team", "vision", "--by", "tag:project", "--since", "1h")
    shown = {line["name"]: line["usd"] for line in by_tag["lines"]}
    assert shown == pytest.approx({"vision-2027": usd[runs[0]], "atlas": usd[runs[1]]})
    assert "runs received since" in by_tag["read"]

    code, out, _ = cli("costs", "--team", "vision", "--by", "spec")
    assert code == 0
    assert "costs of vision since" in out
    assert "costs-tagged" in out
    assert "total" in out


def test_status_shows_each_jobs_cost_and_the_runs(cli: Cli, tmp_path: Path) -> None:
    run_id = _ran(cli, tmp_path, "costs-status", "vision-2027")
    run = cli.plane.table.get_run(run_id)
    assert run is not None
    (job,) = cli.plane.table.get_jobs(ref.job_id for ref in run.jobs).values()
    usd = money_words(cost_of(job) or 0)

    code, out, _ = cli("status", run_id)

    assert code == 0
    assert f"  cost      {usd}, estimated\n" in out
    assert f"    cost: {usd}, estimated\n" in out


def test_bad_input_is_said_in_words(cli: Cli) -> None:
    code, _, err = cli("costs", "--by", "user")
    assert code == 2
    assert "--by 'user': say team, spec, queue or tag:KEY" in err
    code, _, err = cli("costs", "--since", "yesterday")
    assert code == 2
    assert "--since 'yesterday'" in err
