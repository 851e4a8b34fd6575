"""`batchdrop report`'s records, read from a real run: the whole local control plane plays a pipeline whose
first step is reclaimed once on spot (Batch retries it) and whose train step runs out of memory (batchdrop
recovers it), and a sweep whose children partly fail; the report reads the records the stack wrote and
shows a bar per attempt Batch made, the recoveries, the children's run times, and the failed children by
index with their sweep values (docs/report.md)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws
from batchdrop_local.state_changes import log_stream

from batchdrop.gateways.log_links import log_url
from batchdrop.report.page import render_report
from batchdrop.report.records import read_report_records
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import RunRecord, utc_now
from tests.integration.runs import drop_and_wait

pytestmark = pytest.mark.integration

FAILED_CHILDREN = (3, 4, 5, 17)
SCENARIO = Scenario(
    fates=[
        JobFate(spec="rpt-pipe", step="prep", outcome="spot_reclaim", times=1),
        JobFate(spec="rpt-pipe", step="train", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="rpt-sweep", outcome="fail", exit_code=2, fail_children=FAILED_CHILDREN),
    ],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.5, "child": 0.2},
)
PIPELINE = b"""\
version: 1
name: rpt-pipe
team: vision
job_definition: trainer
steps:
  - name: prep
    command: [python, prep.py]
    resources: {vcpus: 2, memory_mib: 4096}
    retries: {attempts: 2, on_spot_interruption: true}
  - name: train
    depends_on: [prep]
    command: [python, train.py]
    resources: {vcpus: 2, memory_mib: 4096}
    retries: {out_of_memory: {times: 2, grow: 2.0}}
"""
SWEEP = f"""\
version: 1
name: rpt-sweep
team: vision
job_definition: trainer
command: [python, train.py, --seed, Ref::seed]
resources: {{vcpus: 1, memory_mib: 2048}}
sweep: {{seed: {[str(n) for n in range(20)]}}}
""".encode()
BAR = re.compile(r'<li class="bar" data-step="([^"]*)" data-job="([^"]*)" data-attempt="(\d+)" data-outcome="(\w+)"')


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def report(plane: ControlPlane, run: RunRecord) -> str:
    table = plane.table
    records = read_report_records(table, JobStates(table.client, table.table_name), run.run_id)
    return render_report(records.run, records.jobs, records.children, now=utc_now())


def test_a_pipelines_report_shows_batchs_retry_and_batchdrops_recovery(plane: ControlPlane) -> None:
    run = drop_and_wait(plane, "incoming/vision/rpt-pipe.yaml", PIPELINE)
    assert run.status == "succeeded"

    page = report(plane, run)
    bars = [(step, attempt, outcome) for step, _, attempt, outcome in BAR.findall(page)]
    assert bars == [
        ("prep", "1", "failed"),  # reclaimed on spot: Batch's retry
        ("prep", "2", "succeeded"),
        ("train", "1", "failed"),  # out of memory with 4 GiB
        ("train", "1", "succeeded"),  # the recovery, with 8 GiB
    ]
    train, new_train = (job for step, job, _, _ in BAR.findall(page) if step == "train")
    assert f"recovered by job {new_train}" in page
    assert f"recovery of job {train}" in page
    assert "ran out of memory with 4 GiB; retrying with 8 GiB (1 of 2)" in page
    assert "attempt 1 failed: the instance was reclaimed (spot interruption)" in page


def test_a_sweeps_report_shows_its_failed_children_by_index(plane: ControlPlane) -> None:
    run = drop_and_wait(plane, "incoming/vision/rpt-sweep.yaml", SWEEP)
    assert run.status == "failed"

    page = report(plane, run)
    assert "FAILED 4, SUCCEEDED 16" in page
    assert "children <code>3-5,17</code>" in page
    assert [int(index) for index in re.findall(r"--index (\d+)</code>", page)] == list(FAILED_CHILDREN)
    # every child's run time, as tracking kept it from the local Batch's events, once each
    assert sum(int(count) for count in re.findall(r'<g class="bucket"[^>]*data-children="(\d+)"', page)) == 20
    assert "Ended children by run time: median about" in page
    # each failed child's sweep value (kept beside the job's record at submit) and its log, as named in the
    # child's FAILED event (`<job definition>/default/<task id>`), kept by tracking
    assert [int(seed) for seed in re.findall(r"<td>seed=(\d+)</td>", page)] == list(FAILED_CHILDREN)
    (array,) = re.findall(r'<div class="array" data-job="([^"]+)"', page)
    expected = [
        log_url(
            "us-east-1",
            "/aws/batch/job",
            log_stream({"jobId": f"{array}:{index}", "jobDefinition": "vision-trainer"}, 1),
        )
        for index in FAILED_CHILDREN
    ]
    assert re.findall(r'href="([^"]*#logsV2:[^"]*)"', page) == [html.escape(url) for url in expected]
    assert "/batch/home" not in page, "no child's job page: each failed child's log is known"
