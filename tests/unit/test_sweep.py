"""Sweeps: each array child gets its own values, decoded by /bin/sh from its index, in its environment
(SWEEP_<NAME>) and in its command (`Ref::<name>`), exactly as written whatever characters they hold."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess

import pytest

from batchdrop.errors import SpecRejected
from batchdrop.spec import sweep
from batchdrop.spec.parse import parse_spec

AXES = {"lr": ["0.1", "0.01", "it's"], "batch": ["32", "64"], "seed": ["1", "2"]}
TRICKY = {
    "experiment_file": [
        "s3://b/a.yaml",
        "s3://b/with space and 'quotes' and \"double\" quotes.yaml",
        "$HOME ${PATH} $(echo no) `echo no` \\ \\\\ \\n * ? [a] ~ ; | & > <",
        "",
        "line one\nline two",
        "@@batchdrop-sweep:lr@@ stays as written",
        "-n",
    ],
    "lr": ["0.1", "Ref::lr and @@batchdrop-sweep:experiment_file@@"],
}
SHELLS = [shell for shell in ("/bin/sh", shutil.which("dash"), shutil.which("bash")) if shell]
"""/bin/sh is what Batch's container runs; the others show the prelude relies on POSIX sh alone."""


def run(command: list[str], index: int | None, shell: str = "/bin/sh") -> subprocess.CompletedProcess[str]:
    assert command[:2] == ["sh", "-c"], "the wrapped command starts the POSIX shell"
    env = {"PATH": os.environ["PATH"]}
    if index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    return subprocess.run([shell, *command[1:]], env=env, capture_output=True, text=True, check=False)


def arguments_seen(command: list[str], index: int, shell: str = "/bin/sh") -> list[str]:
    """The arguments the child's program receives: each NUL-terminated, so any text survives the trip."""
    result = run(command, index, shell)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\0")[:-1]


def test_children_enumerate_the_cartesian_product_last_axis_fastest() -> None:
    expected = [dict(zip(AXES, values, strict=True)) for values in itertools.product(*AXES.values())]
    assert [sweep.child_values(AXES, index) for index in range(sweep.size(AXES))] == expected


def test_index_outside_the_sweep_is_an_error() -> None:
    with pytest.raises(IndexError):
        sweep.child_values(AXES, 12)


@pytest.mark.parametrize("index", range(12))
def test_shell_prelude_sets_the_same_values_in_the_childs_environment(index: int) -> None:
    command = sweep.wrap_command(["sh", "-c", 'printf "%s|%s|%s" "$SWEEP_LR" "$SWEEP_BATCH" "$SWEEP_SEED"'], AXES)
    result = run(command, index)
    values = sweep.child_values(AXES, index)
    assert result.stdout == f"{values['lr']}|{values['batch']}|{values['seed']}"


def test_prelude_refuses_to_run_outside_an_array() -> None:
    result = run(sweep.wrap_command(["true"], AXES), None)
    assert result.returncode != 0
    assert "not an array child" in result.stderr


def test_a_ref_of_an_axis_becomes_a_marker_batch_leaves_alone_other_refs_stay() -> None:
    command = ["train", "Ref::experiment_file", "--f=Ref::experiment_file,Ref::lr", "Ref::lr_schedule", "Ref::out"]
    assert sweep.mark_references(command, ["experiment_file", "lr"]) == [
        "train",
        "@@batchdrop-sweep:experiment_file@@",
        "--f=@@batchdrop-sweep:experiment_file@@,@@batchdrop-sweep:lr@@",
        "Ref::lr_schedule",
        "Ref::out",
    ]
    wrapped = sweep.wrap_command(command, {"experiment_file": ["a", "b"], "lr": ["1", "2"]})
    assert not any("Ref::experiment_file" in argument for argument in wrapped), "Batch would fill it once for all"
    assert "Ref::out" in wrapped, "a parameter that is not swept is still Batch's to fill"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("index", range(sweep.size(TRICKY)))
def test_each_child_gets_its_own_values_in_its_arguments_exactly(index: int, shell: str) -> None:
    command = [
        "printf",
        "%s\\0",
        "Ref::experiment_file",
        "--file=Ref::experiment_file",
        "Ref::experiment_file+Ref::lr:Ref::experiment_file",
        "Ref::lr_schedule",
        "kept: @@batchdrop-sweep:unknown@@ @@batchdrop-sweep:",
        "",
    ]
    values = sweep.child_values(TRICKY, index)
    path, lr = values["experiment_file"], values["lr"]
    assert arguments_seen(sweep.wrap_command(command, TRICKY), index, shell) == [
        path,
        f"--file={path}",
        f"{path}+{lr}:{path}",
        "Ref::lr_schedule",
        "kept: @@batchdrop-sweep:unknown@@ @@batchdrop-sweep:",
        "",
    ]


@pytest.mark.parametrize("index", range(sweep.size(TRICKY)))
def test_axes_that_fill_arguments_are_still_in_the_environment(index: int) -> None:
    command = sweep.wrap_command(
        ["sh", "-c", 'printf "%s\\0%s\\0" "$SWEEP_EXPERIMENT_FILE" "$1"', "-", "Ref::lr"], TRICKY
    )
    values = sweep.child_values(TRICKY, index)
    assert arguments_seen(command, index) == [values["experiment_file"], values["lr"]]


def test_the_prelude_leaves_no_variables_of_its_own_to_the_command() -> None:
    shown = 'printf "%s" "${_bd_out-unset}${_bd_arg-unset}${_bd_i-unset}"'
    assert run(sweep.wrap_command(["sh", "-c", shown, "-", "Ref::lr"], TRICKY), 0).stdout == "unset" * 3
    assert run(sweep.wrap_command(["sh", "-c", shown], TRICKY), 0).stdout == "unset" * 3


def test_the_containers_own_variables_reach_the_command_as_they_were() -> None:
    command = sweep.wrap_command(["sh", "-c", 'printf "%s" "$i"', "-", "Ref::lr"], TRICKY)
    environment = {"PATH": os.environ["PATH"], "AWS_BATCH_JOB_ARRAY_INDEX": "3", "i": "the image's own"}
    seen = subprocess.run(["/bin/sh", *command[1:]], env=environment, capture_output=True, text=True, check=True)
    assert seen.stdout == "the image's own"


def as_batch_substitutes(command: list[str], parameters: dict[str, str]) -> list[str]:
    """What Batch does to a command before running it: every `Ref::<parameter>`, in every element (the
    prelude's text too), becomes the parameter's value."""
    pattern = re.compile(r"Ref::([A-Za-z0-9_]+)")
    return [pattern.sub(lambda found: parameters.get(found.group(1), found.group(0)), element) for element in command]


REF_VALUES = {
    "value": [
        "Ref::output_path",
        "--x=Ref::output_path and 'Ref::output_path' Ref::value",
        "Ref:: Ref: Ref:::output_path Ref::",
        "it's Ref::output_path's",
    ],
    "seed": ["1", "Ref::seed"],
}


@pytest.mark.parametrize("index", range(sweep.size(REF_VALUES)))
def test_a_value_holding_a_ref_reaches_the_child_exactly_after_batch_substitutes_its_parameters(index: int) -> None:
    command = [
        "sh",
        "-c",
        'printf "%s\\0" "$SWEEP_VALUE" "$SWEEP_SEED" "$@"',
        "-",
        "Ref::value",
        "--out=Ref::output_path",
    ]
    wrapped = as_batch_substitutes(sweep.wrap_command(command, REF_VALUES), {"output_path": "s3://results"})
    values = sweep.child_values(REF_VALUES, index)
    assert arguments_seen(wrapped, index) == [values["value"], values["seed"], values["value"], "--out=s3://results"]


def test_a_command_without_refs_gets_the_short_prelude() -> None:
    wrapped = sweep.wrap_command(["python", "train.py"], AXES)
    assert "@@batchdrop-sweep" not in wrapped[2]
    assert wrapped[3:] == [sweep.SHELL_NAME, "python", "train.py"]


SPEC = "version: 1\nname: probe\njob_definition: trainer\nresources: {vcpus: 2, memory_mib: 4096}\n"


def test_a_name_both_swept_and_in_parameters_is_refused_where_the_sweep_says_it() -> None:
    text = SPEC + 'command: [run, Ref::lr]\nparameters: {lr: "1"}\nsweep: {lr: ["0.1", "0.2"]}\n'
    with pytest.raises(SpecRejected) as caught:
        parse_spec(text.encode(), "spec.yaml")
    (problem,) = [problem for problem in caught.value.problems if problem.code == "sweep_parameter_clash"]
    assert (problem.path, problem.line) == ("sweep.lr", 7)
    assert "both swept and set in `parameters`" in problem.message


def test_a_top_level_parameter_clashes_with_a_steps_sweep_too() -> None:
    text = SPEC + (
        "command: [run]\nparameters: {experiment_file: s3://b/x.yaml}\n"
        "steps:\n  - name: train\n    sweep: {experiment_file: [s3://b/a.yaml, s3://b/b.yaml]}\n"
    )
    with pytest.raises(SpecRejected) as caught:
        parse_spec(text.encode(), "spec.yaml")
    assert [problem.path for problem in caught.value.problems if problem.code == "sweep_parameter_clash"] == [
        "steps[0].sweep.experiment_file"
    ]


def test_a_sweep_without_command_is_a_valid_spec() -> None:
    parsed = parse_spec((SPEC + 'sweep: {lr: ["0.1", "0.2"]}\n').encode(), "spec.yaml")
    assert parsed.jobs[0].array_size == 2


@pytest.mark.parametrize(
    ("indices", "text"),
    [
        ([3, 7, 10, 11, 12, 13, 14], "3,7,10-14"),
        ([5], "5"),
        ([], ""),
        ([0, 1, 2, 999], "0-2,999"),
        ([9, 4, 5], "9,4-5"),
    ],
)
def test_children_indices_travel_as_compact_ranges_in_order(indices: list[int], text: str) -> None:
    assert sweep.compact_indices(indices) == text
    assert sweep.expand_indices(text) == indices


def test_indices_that_are_not_numbers_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'x-3' is not an index or a range"):
        sweep.expand_indices("1,x-3")


RECOVERED = [1, 3, 7, 8, 9, 10, 11, 5]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("new_index", range(len(RECOVERED)))
def test_a_recovered_child_sees_exactly_what_the_original_child_saw(new_index: int, shell: str) -> None:
    shown = 'printf "%s|%s|%s|%s" "$BATCHDROP_CHILD_INDEX" "$SWEEP_LR" "$SWEEP_BATCH" "$SWEEP_SEED"'
    command = sweep.wrap_command(["sh", "-c", shown], AXES)
    original = RECOVERED[new_index]
    environment = {
        "PATH": os.environ["PATH"],
        "AWS_BATCH_JOB_ARRAY_INDEX": str(new_index),
        "BATCHDROP_CHILD_INDICES": sweep.compact_indices(RECOVERED),
    }
    result = subprocess.run([shell, *command[1:]], env=environment, capture_output=True, text=True, check=False)
    values = sweep.child_values(AXES, original)
    assert result.stdout == f"{original}|{values['lr']}|{values['batch']}|{values['seed']}", result.stderr


def test_every_array_child_knows_its_index_and_a_single_job_recovering_one_child_knows_its_own() -> None:
    shown = ["sh", "-c", 'printf "%s|%s" "$BATCHDROP_CHILD_INDEX" "$SWEEP_SEED"']
    assert run(sweep.wrap_command(shown, AXES), 5).stdout == "5|2"
    one = {"PATH": os.environ["PATH"], "BATCHDROP_CHILD_INDICES": "4"}  # no array index: a single job
    result = subprocess.run(
        ["/bin/sh", *sweep.wrap_command(shown, AXES)[1:]], env=one, capture_output=True, text=True, check=False
    )
    assert result.stdout == "4|1"
    plain = sweep.wrap_command(["sh", "-c", 'printf "%s" "$BATCHDROP_CHILD_INDEX"'], {})
    assert run(plain, 6).stdout == "6", "a plain array's child too"
