"""How a sweep becomes one Batch array job whose children each see their own values (docs/sweeps.md).

Batch gives every child of an array job the same overrides and tells it only
its index, `AWS_BATCH_JOB_ARRAY_INDEX`. batchdrop turns the sweep's cartesian
product into that index, last axis fastest (like nested for-loops), and wraps
the step's command (or its job definition's) in a short POSIX shell prelude
that decodes the index into `SWEEP_<NAME>` variables and then `exec`s the
command. Any image with `/bin/sh` works; nothing needs installing in the container.

For `sweep: {lr: ["0.1", "0.01"], batch: ["32", "64"]}` the children are:
index 0 → lr=0.1 batch=32, 1 → lr=0.1 batch=64, 2 → lr=0.01 batch=32, 3 → lr=0.01 batch=64.

An axis may also fill a `Ref::<name>` placeholder of the command. Batch
substitutes `Ref::` parameters once, for the whole array job, so batchdrop
replaces each `Ref::<axis>` (a whole argument or part of one, as in
`--file=Ref::experiment_file`) by a marker Batch does not touch,
`@@batchdrop-sweep:<axis>@@`, and the prelude puts each child's own value in
its place before the `exec`. The values travel as single-quoted shell words
and are only ever expanded inside double quotes: nothing of them is run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

INDEX_VARIABLE = "AWS_BATCH_JOB_ARRAY_INDEX"
SHELL_NAME = "batchdrop-sweep"
"""`$0` of the prelude, so `ps` and error messages say who is speaking."""
MARKER_PREFIX = "@@batchdrop-sweep:"
MARKER_SUFFIX = "@@"
_REF_NAME_CHARACTER = "[A-Za-z0-9_]"
"""What may follow `Ref::` in a parameter's name: `Ref::lr` is not the start of `Ref::lr_schedule`."""


def env_name(axis: str) -> str:
    return f"SWEEP_{axis.upper()}"


def marker(axis: str) -> str:
    """What stands for `Ref::<axis>` in the command batchdrop sends, until the prelude fills it in."""
    return f"{MARKER_PREFIX}{axis}{MARKER_SUFFIX}"


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


def mark_references(command: Sequence[str], axes: Sequence[str]) -> list[str]:
    """`command` with every `Ref::<axis>` of these axes replaced by its marker; other `Ref::`s untouched."""
    if not axes:
        return list(command)
    names = "|".join(re.escape(axis) for axis in sorted(axes, key=len, reverse=True))
    pattern = re.compile(rf"Ref::({names})(?!{_REF_NAME_CHARACTER})")
    return [pattern.sub(lambda found: marker(found.group(1)), argument) for argument in command]


def _quote(value: str) -> str:
    """`value` as one single-quoted shell word. Batch fills `Ref::<parameter>` in every element of the
    command, the prelude's text included, so a `Ref::` of a value is written `Ref:'':`: the shell joins
    it back into `Ref::`, and Batch never sees the token."""
    return "'" + value.replace("'", "'\\''").replace("Ref::", "Ref:'':") + "'"


def _decode(sweep: Mapping[str, Sequence[str]]) -> list[str]:
    """Lines that set SWEEP_<NAME> from the array index (in `_bd_i`, so a container's own `i` is left be)."""
    lines = [f'_bd_i="${{{INDEX_VARIABLE}:?batchdrop: not an array child}}"']
    for axis, choices in reversed(list(sweep.items())):
        cases = " ".join(f"{position}) {env_name(axis)}={_quote(value)};;" for position, value in enumerate(choices))
        lines.append(f"case $((_bd_i % {len(choices)})) in {cases} esac; _bd_i=$((_bd_i / {len(choices)}))")
    lines.append("unset _bd_i")
    return lines


def _substitute(axes: Sequence[str]) -> list[str]:
    """Lines that rebuild "$@" with each marker replaced by its SWEEP_<NAME>, scanning each argument once,
    left to right, so a value that happens to hold a marker is never read again."""
    branches = " ".join(
        f'{axis}{MARKER_SUFFIX}*) _bd_out="$_bd_out${env_name(axis)}"; _bd_arg="${{_bd_arg#{axis}{MARKER_SUFFIX}}}";;'
        for axis in axes
    )
    return [
        "_bd_n=$#",
        "for _bd_arg do",
        "  _bd_out=",
        "  while :; do",
        f"    case $_bd_arg in *{MARKER_PREFIX}*) ;; *) break;; esac",
        f'    _bd_out="$_bd_out${{_bd_arg%%{MARKER_PREFIX}*}}"; _bd_arg="${{_bd_arg#*{MARKER_PREFIX}}}"',
        f'    case $_bd_arg in {branches} *) _bd_out="$_bd_out{MARKER_PREFIX}";; esac',
        "  done",
        '  set -- "$@" "$_bd_out$_bd_arg"',
        "done",
        'shift "$_bd_n"',
        "unset _bd_n _bd_arg _bd_out",
    ]


def prelude(sweep: Mapping[str, Sequence[str]], *, substitute: Sequence[str] = ()) -> str:
    """The shell text that sets SWEEP_<NAME> from the array index, fills the markers of the axes in
    `substitute` into the arguments, and runs them (see the module doc)."""
    lines = _decode(sweep)
    lines.append("export " + " ".join(env_name(axis) for axis in sweep))
    if substitute:
        lines.extend(_substitute(substitute))
    lines.append('exec "$@"')
    return "\n".join(lines)


def wrap_command(command: Sequence[str], sweep: Mapping[str, Sequence[str]]) -> list[str]:
    """`command`, run by the prelude: `sh -c <prelude> batchdrop-sweep <command...>`, each `Ref::<axis>`
    of it filled per child."""
    marked = mark_references(command, list(sweep))
    referenced = [axis for axis in sweep if any(marker(axis) in argument for argument in marked)]
    return ["sh", "-c", prelude(sweep, substitute=referenced), SHELL_NAME, *marked]
