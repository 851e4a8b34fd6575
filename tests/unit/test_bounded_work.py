"""Any file within the size limit is decided with bounded work, and says so in bounded words (issue 11, defect 5).

The files come from `bench.adversarial` (`make bench` times the worst of them against a one-second budget).
These tests assert behaviour, not time: a problem list capped at `MAX_PROBLEMS` with a last problem saying
there may be more, every problem reported once, every message and path short, a long value echoed cut
with a note, and no exception other than `SpecRejected` escaping.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from batchdrop import limits
from batchdrop.errors import Problem, SpecRejected
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.planning import plan_run
from batchdrop.spec.documents import MAX_DOCUMENT_BYTES
from batchdrop.spec.parse import parse_spec
from bench.adversarial import ADVERSARIAL_SPECS, HEADER, decide


def problems_of(build: Callable[[], tuple[str, bytes]], config: PlatformConfig) -> list[Problem]:
    filename, raw = build()
    assert len(raw) <= MAX_DOCUMENT_BYTES, "an adversarial file is one the size limit lets through"
    return decide(raw, filename, config)


def codes(problems: list[Problem]) -> set[str]:
    return {problem.code for problem in problems}


@pytest.mark.parametrize("build", list(ADVERSARIAL_SPECS.values()), ids=list(ADVERSARIAL_SPECS))
def test_every_adversarial_file_is_rejected_with_few_short_distinct_problems(
    build: Callable[[], tuple[str, bytes]], platform_config: PlatformConfig
) -> None:
    problems = problems_of(build, platform_config)
    assert problems, "each of these files is wrong"
    assert len(problems) <= limits.MAX_PROBLEMS + 1
    for problem in problems:
        assert len(problem.message) <= limits.PROBLEM_MESSAGE_CHARS, problem.message[:300]
        assert len(problem.path) <= limits.PROBLEM_MESSAGE_CHARS, problem.path[:300]
    where_and_what = [(p.path, p.line, p.column, p.code, p.message) for p in problems]
    assert len(set(where_and_what)) == len(where_and_what), "each problem is reported once"


def test_a_file_with_more_problems_than_the_cap_says_there_may_be_more(platform_config: PlatformConfig) -> None:
    problems = problems_of(ADVERSARIAL_SPECS["unknown_top_level_keys"], platform_config)
    assert len(problems) == limits.MAX_PROBLEMS + 1
    assert codes(problems[:-1]) == {"unknown_field"}
    last = problems[-1]
    assert last.code == "too_many_problems"
    assert f"after {limits.MAX_PROBLEMS} problems" in last.message
    assert "may be more" in last.message


def test_a_misplaced_sweep_is_reported_once_not_once_per_step(platform_config: PlatformConfig) -> None:
    problems = problems_of(ADVERSARIAL_SPECS["top_level_sweep_over_50_steps"], platform_config)
    assert [(problem.path, problem.code) for problem in problems] == [("sweep", "misplaced")]


def test_repeated_sweep_values_are_named_a_few_at_a_time(platform_config: PlatformConfig) -> None:
    problems = problems_of(ADVERSARIAL_SPECS["steps_with_huge_sweeps"], platform_config)
    repeats = [problem for problem in problems if problem.code == "duplicate_value"]
    assert repeats
    assert all(problem.path.endswith(".sweep.lr") for problem in repeats)
    assert "and 90 more" in repeats[0].message


def test_a_long_value_is_echoed_cut_and_says_so(platform_config: PlatformConfig) -> None:
    (problem,) = problems_of(ADVERSARIAL_SPECS["one_huge_value"], platform_config)
    assert problem.code == "not_allowed"
    assert "x" * limits.ECHOED_VALUE_CHARS in problem.message
    assert "x" * (limits.ECHOED_VALUE_CHARS + 1) not in problem.message
    assert "… (shortened from 200,000 characters)" in problem.message


def test_a_long_unknown_key_is_echoed_cut_in_its_message_and_path(platform_config: PlatformConfig) -> None:
    problems = problems_of(ADVERSARIAL_SPECS["one_huge_key"], platform_config)
    (unknown,) = [problem for problem in problems if problem.code == "unknown_field"]
    assert "shortened from 200,000 characters" in unknown.message
    assert "did you mean" not in unknown.message
    assert unknown.path.startswith("k" * limits.ECHOED_VALUE_CHARS + "…")


def test_defaults_and_a_steps_own_env_over_the_limit_together_are_a_problem_not_a_crash(
    platform_config: PlatformConfig,
) -> None:
    problems = problems_of(ADVERSARIAL_SPECS["env_merged_over_its_limit"], platform_config)
    assert [(problem.path, problem.code) for problem in problems] == [("steps[0].env", "too_long")]
    assert "400" in problems[0].message


def test_a_number_too_long_to_read_is_a_problem_not_a_crash(platform_config: PlatformConfig) -> None:
    (problem,) = problems_of(ADVERSARIAL_SPECS["a_number_of_5000_digits"], platform_config)
    assert (problem.path, problem.code) == ("priority", "bad_number")
    assert len(problem.message) < 2 * limits.ECHOED_VALUE_CHARS


def test_problem_messages_and_paths_are_bounded_wherever_they_are_made() -> None:
    problem = Problem(path="p" * 5000, code="x", message="m" * 5000)
    assert len(problem.message) <= limits.PROBLEM_MESSAGE_CHARS
    assert len(problem.path) <= limits.PROBLEM_MESSAGE_CHARS
    assert problem.message.endswith("(shortened from 5,000 characters)")


def test_a_long_team_folder_is_echoed_cut(platform_config: PlatformConfig) -> None:
    parsed = parse_spec(HEADER.encode(), "a.yaml")
    with pytest.raises(SpecRejected) as caught:
        plan_run(parsed, team="t" * 1000, config=platform_config, run_id="a" * 20)
    (problem,) = caught.value.problems
    assert problem.code == "unknown_team"
    assert "t" * limits.ECHOED_VALUE_CHARS + "… (shortened from 1,000 characters)" in problem.message
