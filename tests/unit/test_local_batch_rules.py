"""The local Batch's own decisions: Batch's retry rules (evaluateOnExit), a resubmitted array's original
child indices, which scenario fate a job with a recovery suffix finds, a fate for the first job only, and
the scenario's reruns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from batchdrop_local.batch_fates import (
    JobFate,
    Scenario,
    ScenarioError,
    child_indices,
    original_indices,
    retried,
    retry_action,
    spec_and_step,
)

RECLAIMED = "Host EC2 (instance i-0abc) terminated."
EXITED = "Essential container in task exited"
OOM = "OutOfMemoryError: Container killed due to memory usage"
BATCHDROP_RULES = [{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]


@pytest.mark.parametrize(
    ("rules", "status_reason", "reason", "exit_code", "action"),
    [
        # batchdrop's own rules: a reclaim is retried, any container failure is not
        (BATCHDROP_RULES, RECLAIMED, None, None, "RETRY"),
        (BATCHDROP_RULES, EXITED, OOM, 137, "EXIT"),
        (BATCHDROP_RULES, EXITED, None, 3, "EXIT"),  # `*` matches a reason the attempt lacks
        # the first entry that matches decides, in order
        ([{"onExitCode": "137", "action": "EXIT"}, {"onExitCode": "*", "action": "RETRY"}], EXITED, OOM, 137, "EXIT"),
        ([{"onExitCode": "*", "action": "RETRY"}, {"onExitCode": "137", "action": "EXIT"}], EXITED, OOM, 137, "RETRY"),
        # globs: `*` ends a pattern; without it the whole text must match; exit codes compared as text
        ([{"onExitCode": "13*", "action": "EXIT"}], EXITED, None, 137, "EXIT"),
        ([{"onExitCode": "13", "action": "EXIT"}], EXITED, None, 137, "RETRY"),
        ([{"onExitCode": "137", "action": "EXIT"}], RECLAIMED, None, None, "RETRY"),  # no exit code: no match
        ([{"onReason": "OutOfMemoryError*", "action": "EXIT"}], EXITED, OOM, 137, "EXIT"),
        ([{"onStatusReason": "Host EC2", "action": "EXIT"}], RECLAIMED, None, None, "RETRY"),
        # every condition of an entry must match
        ([{"onStatusReason": "Host EC2*", "onExitCode": "1", "action": "EXIT"}], RECLAIMED, None, None, "RETRY"),
        ([{"onStatusReason": "Essential*", "onExitCode": "1", "action": "exit"}], EXITED, None, 1, "EXIT"),
        # no entry matches, or none at all: retried
        ([{"onExitCode": "2", "action": "EXIT"}], EXITED, None, 3, "RETRY"),
        ([], EXITED, None, 3, "RETRY"),
    ],
)
def test_the_first_evaluate_on_exit_entry_that_matches_decides(
    rules: list[dict[str, str]], status_reason: str, reason: str | None, exit_code: int | None, action: str
) -> None:
    strategy = {"attempts": 3, "evaluateOnExit": rules}
    assert retry_action(strategy, status_reason=status_reason, reason=reason, exit_code=exit_code) == action


def _attempt(exit_code: int | None, status_reason: str = EXITED) -> dict[str, Any]:
    return {"statusReason": status_reason, "container": {} if exit_code is None else {"exitCode": exit_code}}


def test_a_failed_attempt_is_retried_only_while_attempts_remain() -> None:
    strategy = {"attempts": 3}
    assert retried(strategy, 1, _attempt(1))
    assert retried(strategy, 2, _attempt(1))
    assert not retried(strategy, 3, _attempt(1))
    assert not retried({}, 1, _attempt(None, RECLAIMED))  # one attempt when no strategy says more
    assert not retried({"attempts": 3, "evaluateOnExit": BATCHDROP_RULES}, 1, _attempt(3))


@pytest.mark.parametrize(
    ("text", "indices"),
    [("3,7,10-14", [3, 7, 10, 11, 12, 13, 14]), ("5", [5]), ("0-2,9", [0, 1, 2, 9]), (" 4 , 2 ", [4, 2])],
)
def test_child_indices_expand_in_order(text: str, indices: list[int]) -> None:
    assert child_indices(text) == indices


def test_bad_child_indices_are_told_in_words() -> None:
    with pytest.raises(ScenarioError, match="'x' is not an index"):
        child_indices("3,x")


def test_a_childs_original_index_comes_from_its_arrays_environment() -> None:
    job = {"container": {"environment": [{"name": "BATCHDROP_CHILD_INDICES", "value": "3,7,10-14"}]}}
    assert original_indices(job, 7) == [3, 7, 10, 11, 12, 13, 14]
    assert original_indices({"container": {"environment": []}}, 3) == [0, 1, 2]
    with pytest.raises(ScenarioError, match="names 7 children, not 5"):
        original_indices(job, 5)


def test_fail_children_fail_only_those() -> None:
    fate = JobFate(spec="sweep", step="train", outcome="fail", fail_children=[2, 5])  # type: ignore[arg-type]
    assert [fate.outcome_of(index) for index in range(6)] == ["succeed"] * 2 + ["fail"] + ["succeed"] * 2 + ["fail"]


def test_a_recovered_jobs_names_find_their_fate() -> None:
    scenario = Scenario(fates=[JobFate(spec="detector", step="train", outcome="out_of_memory")])
    run = "abcdefghijklmnopqrst"
    for name, step in [
        (f"detector-train-{run}-r2", "train"),
        (f"detector-train-r1-{run}", "train-r1"),
        (f"detector-rc3f9a-train-{run}", "train"),
    ]:
        spec, found_step = spec_and_step({"jobName": name, "tags": {"batchdrop:run-id": run, "batchdrop:step": step}})
        assert scenario.fate(spec, found_step).outcome == "out_of_memory", name
    tagged = {"jobName": "anything", "tags": {"batchdrop:spec": "detector", "batchdrop:step": "train"}}
    assert scenario.fate(*spec_and_step(tagged)).outcome == "out_of_memory"
    assert scenario.fate("other", "train").outcome == "succeed"


def test_a_scenario_with_an_unknown_field_is_refused_in_words(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("fates:\n  - {spec: a, outcome: out_of_memory, below_memory: 4096}\n")
    with pytest.raises(ScenarioError, match="below_memory"):
        Scenario.load(path)
    path.write_text("fates: [{spec: a\n")
    with pytest.raises(ScenarioError, match="cannot be read"):
        Scenario.load(path)
    path.write_text("fates:\n  - {spec: a, outcome: explode}\n")
    with pytest.raises(ScenarioError, match="explode"):
        Scenario.load(path)
    path.write_text("fates:\n  - {spec: a, outcome: out_of_memory, below_memory_mib: 8192, fail_children: [1]}\n")
    [fate] = Scenario.load(path).fates
    assert (fate.below_memory_mib, fate.fail_children) == (8192, (1,))


def test_a_first_job_only_fate_hits_the_steps_first_job_and_no_later_one() -> None:
    """A rerun of the failed run (a later job of the step, whatever its run) succeeds."""

    def job(name: str, run: str) -> dict[str, Any]:
        return {"jobName": name, "tags": {"batchdrop:run-id": run, "batchdrop:step": "evaluate"}}

    scenario = Scenario(fates=[JobFate(spec="pipe", step="evaluate", outcome="fail", first_job_only=True)])
    run, rerun = "a" * 20, "b" * 20
    first = scenario.fate(*spec_and_step(job(f"pipe-evaluate-{run}", run)))
    assert (first.outcome, first.exit_code) == ("fail", 1)
    assert scenario.fate("pipe", "prep").outcome == "succeed", "other steps are not counted"
    later = scenario.fate(*spec_and_step(job(f"pipe-evaluate-{rerun}", rerun)))
    assert later.outcome == "succeed"
    assert scenario.fate("pipe", "evaluate-r1").outcome == "succeed", "a recovery's job is a later job too"
    lasting = Scenario(fates=[JobFate(spec="pipe", step="evaluate", outcome="fail")])
    assert [lasting.fate("pipe", "evaluate").outcome for _ in range(3)] == ["fail"] * 3, "without it: every job"


def test_the_demo_scenario_fails_the_pipelines_evaluation_once_and_reruns_it() -> None:
    scenario = Scenario.load(Path(__file__).resolve().parents[2] / "examples" / "demo" / "scenario.yaml")
    [rerun] = scenario.reruns
    assert (rerun.spec, rerun.expected, rerun.reused, rerun.submitted) == (
        "resnet-sweep",
        "succeeded",
        ("prep", "train"),
        ("evaluate",),
    )
    assert scenario.expected["resnet-sweep"] == "failed"
    assert [scenario.fate("resnet-sweep", "evaluate").outcome for _ in range(2)] == ["fail", "succeed"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("fates:\n  - {spec: a, outcome: fail, first_job_only: sometimes}\n", "first_job_only is true or false"),
        ("reruns:\n  - {spec: a, reused: prep}\n", "reused is a list of step names"),
        ("reruns:\n  - {spec: a, expect: failed}\n", "rerun .*unknown \\['expect'\\]"),
        ("reruns:\n  - {reused: [prep]}\n", "or no spec"),
        ("reruns: resnet\n", "reruns is a list of mappings"),
    ],
)
def test_a_bad_first_job_only_or_rerun_is_refused_in_words(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=words):
        Scenario.load(path)
