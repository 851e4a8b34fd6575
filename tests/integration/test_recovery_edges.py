"""Recovery's edge cases end to end (docs/recovery.md, *Edge cases*): two steps of one pipeline that run out
of memory at the same time are each recovered, each rewires its own downstream step, nothing is submitted
twice, and the run ends once, with each step's whole chain on one line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from tests.integration.runs import batch_job_names, drop_and_wait

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    fates=[
        JobFate(spec="rec-branches", step="left", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="rec-branches", step="right", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="rec-join", step="left", outcome="out_of_memory", below_memory_mib=8192),
        JobFate(spec="rec-join", step="right", outcome="out_of_memory", below_memory_mib=8192),
    ],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.5, "child": 0.2},
)
BRANCHES = b"""\
version: 1
name: rec-branches
team: vision
job_definition: trainer
steps:
  - name: prep
    command: [python, prep.py]
    resources: {vcpus: 2, memory_mib: 4096}
  - name: left
    depends_on: [prep]
    command: [python, left.py]
    resources: {vcpus: 2, memory_mib: 4096}
    retries: {out_of_memory: {times: 2}}
  - name: right
    depends_on: [prep]
    command: [python, right.py]
    resources: {vcpus: 2, memory_mib: 4096}
    retries: {out_of_memory: {times: 2}}
  - name: left-report
    depends_on: [left]
    command: [python, report.py, left]
    resources: {vcpus: 1, memory_mib: 2048}
  - name: right-report
    depends_on: [right]
    command: [python, report.py, right]
    resources: {vcpus: 1, memory_mib: 2048}
"""


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def test_two_parallel_branches_out_of_memory_at_once_are_each_recovered_with_their_own_downstream(
    plane: ControlPlane,
) -> None:
    run = drop_and_wait(plane, "incoming/vision/rec-branches.yaml", BRANCHES)

    assert run.status == "succeeded"
    names = batch_job_names(plane, run)
    assert [name for name, count in Counter(names).items() if count > 1] == [], "nothing submitted twice"
    assert len(names) == 9, "5 first jobs; then left, right and each one's report again: prep never again"
    by_step = {ref.step: ref for ref in run.jobs}
    assert by_step["left"].job_name == f"rec-branches-left-{run.run_id}-r1"
    assert by_step["right"].job_name == f"rec-branches-right-{run.run_id}-r1"
    left_report = plane.table.get_job(by_step["left-report"].job_id)
    right_report = plane.table.get_job(by_step["right-report"].job_id)
    assert left_report is not None
    assert right_report is not None
    assert left_report.depends_on == [by_step["left"].job_id], "each report waits for its own branch's new job"
    assert right_report.depends_on == [by_step["right"].job_id]
    steps = {step.step: step for step in run.steps}
    assert [step.status for step in run.steps] == ["succeeded"] * 5
    for branch in ("left", "right"):
        assert steps[branch].story == "attempt 1: out of memory at 4 GiB → recovery 1 with 8 GiB → succeeded"
    assert steps["prep"].story is None


JOIN = BRANCHES.replace(b"rec-branches", b"rec-join").replace(
    b"""  - name: left-report
    depends_on: [left]
    command: [python, report.py, left]
    resources: {vcpus: 1, memory_mib: 2048}
  - name: right-report
    depends_on: [right]
    command: [python, report.py, right]
    resources: {vcpus: 1, memory_mib: 2048}
""",
    b"""  - name: compare
    depends_on: [left, right]
    command: [python, compare.py]
    resources: {vcpus: 1, memory_mib: 2048}
""",
)


def test_two_branches_a_later_step_waits_for_out_of_memory_at_once_end_once(plane: ControlPlane) -> None:
    run = drop_and_wait(plane, "incoming/vision/rec-join.yaml", JOIN)

    names = batch_job_names(plane, run)
    assert [name for name, count in Counter(names).items() if count > 1] == [], "nothing submitted twice"
    assert run.status == "succeeded", run.reason
    by_step = {ref.step: ref for ref in run.jobs}
    compare = plane.table.get_job(by_step["compare"].job_id)
    assert compare is not None
    assert sorted(compare.depends_on) == sorted([by_step["left"].job_id, by_step["right"].job_id])
