"""The local Batch's own decisions: Batch's retry rules (evaluateOnExit), a resubmitted array's original
child indices, and which scenario fate a job with a recovery suffix finds."""

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
