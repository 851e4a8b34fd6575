"""How a sweep becomes one Batch array job whose children each see their own values.

Batch gives every child of an array job the same overrides and tells it only
its index, `AWS_BATCH_JOB_ARRAY_INDEX`. batchdrop turns the sweep's cartesian
product into that index, last axis fastest (like nested for-loops), and wraps
the step's command in a short POSIX shell prelude that decodes the index into
`SWEEP_<NAME>` variables and then `exec`s the command. Any image with
`/bin/sh` works; nothing needs installing in the container.

For `sweep: {lr: ["0.1", "0.01"], batch: ["32", "64"]}` the children are:
index 0 → lr=0.1 batch=32, 1 → lr=0.1 batch=64, 2 → lr=0.01 batch=32, 3 → lr=0.01 batch=64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

INDEX_VARIABLE = "AWS_BATCH_JOB_ARRAY_INDEX"
SHELL_NAME = "batchdrop-sweep"
"""`$0` of the prelude, so `ps` and error messages say who is speaking."""


def env_name(axis: str) -> str:
    return f"SWEEP_{axis.upper()}"


def size(sweep: Mapping[str, Sequence[str]]) -> int:
    return math.prod(len(values) for values in sweep.values())


def child_values(sweep: Mapping[str, Sequence[str]], index: int) -> dict[str, str]:
    """The values child `index` runs with, keyed by axis name."""
    if not 0 <= index < size(sweep):
        raise IndexError(f"child {index} is outside a sweep of {size(sweep)}")
    values: dict[str, str] = {}
    for axis, choices in reversed(list(sweep.items())):
        index, position = divmod(index, len(choices))
        values[axis] = choices[position]
    return {axis: values[axis] for axis in sweep}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def prelude(sweep: Mapping[str, Sequence[str]]) -> str:
    """The shell text that sets SWEEP_<NAME> from the array index (see the module doc)."""
    lines = [f'i="${{{INDEX_VARIABLE}:?batchdrop: not an array child}}"']
    for axis, choices in reversed(list(sweep.items())):
        cases = " ".join(f"{position}) {env_name(axis)}={_quote(value)};;" for position, value in enumerate(choices))
        lines.append(f"case $((i % {len(choices)})) in {cases} esac; i=$((i / {len(choices)}))")
    lines.append("export " + " ".join(env_name(axis) for axis in sweep))
    lines.append('exec "$@"')
    return "\n".join(lines)


def wrap_command(command: Sequence[str], sweep: Mapping[str, Sequence[str]]) -> list[str]:
    """`command`, run by the prelude: `sh -c <prelude> batchdrop-sweep <command...>`."""
    return ["sh", "-c", prelude(sweep), SHELL_NAME, *command]
