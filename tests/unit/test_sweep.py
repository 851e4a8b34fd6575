"""Sweeps: each array child gets its own values, decoded by /bin/sh from its index."""

from __future__ import annotations

import itertools
import os
import subprocess

import pytest

from batchdrop.spec import sweep

AXES = {"lr": ["0.1", "0.01", "it's"], "batch": ["32", "64"], "seed": ["1", "2"]}


def test_children_enumerate_the_cartesian_product_last_axis_fastest() -> None:
    expected = [dict(zip(AXES, values, strict=True)) for values in itertools.product(*AXES.values())]
    assert [sweep.child_values(AXES, index) for index in range(sweep.size(AXES))] == expected


def test_index_outside_the_sweep_is_an_error() -> None:
    with pytest.raises(IndexError):
        sweep.child_values(AXES, 12)


@pytest.mark.parametrize("index", range(12))
def test_shell_prelude_sets_the_same_values_in_the_childs_environment(index: int) -> None:
    command = sweep.wrap_command(["sh", "-c", 'printf "%s|%s|%s" "$SWEEP_LR" "$SWEEP_BATCH" "$SWEEP_SEED"'], AXES)
    result = subprocess.run(
        command,
        env={"PATH": os.environ["PATH"], "AWS_BATCH_JOB_ARRAY_INDEX": str(index)},
        capture_output=True,
        text=True,
        check=True,
    )
    values = sweep.child_values(AXES, index)
    assert result.stdout == f"{values['lr']}|{values['batch']}|{values['seed']}"


def test_prelude_refuses_to_run_outside_an_array() -> None:
    command = sweep.wrap_command(["true"], AXES)
    result = subprocess.run(command, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "not an array child" in result.stderr
