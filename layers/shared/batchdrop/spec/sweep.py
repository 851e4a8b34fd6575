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
CHILD_INDEX_VARIABLE = "BATCHDROP_CHILD_INDEX"
"""The child's index in the array the spec made: what `AWS_BATCH_JOB_ARRAY_INDEX` was for it, recovered or not."""
CHILD_INDICES_VARIABLE = "BATCHDROP_CHILD_INDICES"
"""In a job that recovers some children of an array: their original indices, by new index (`3,7,10-14`)."""
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


def compact_indices(indices: Sequence[int]) -> str:
    """[3, 7, 10, 11, 12, 13, 14] -> `3,7,10-14`: children's original indices, in order (a position in the
    list is a child's new index), short enough for an environment variable."""
    parts: list[str] = []
    start = previous = None
    for index in [*indices, None]:
        if index is not None and previous is not None and index == previous + 1:
            previous = index
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = index
    return ",".join(parts)


def expand_indices(text: str) -> list[int]:
    """`3,7,10-14` -> [3, 7, 10, 11, 12, 13, 14] (the inverse of `compact_indices`)."""
    indices: list[int] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        first, _, last = part.partition("-")
        try:
            indices += range(int(first), int(last or first) + 1)
        except ValueError as error:
            raise ValueError(f"{CHILD_INDICES_VARIABLE}={text!r}: {part!r} is not an index or a range") from error
    return indices


def _original_index() -> list[str]:
    """Lines that set `_bd_i` to the child's original index: its array index (0 for the single job that
    recovers one child), mapped through `BATCHDROP_CHILD_INDICES` when the job recovers some children."""
    return [
        f'_bd_i="${{{INDEX_VARIABLE}:-}}"',
        f'if [ -n "${{{CHILD_INDICES_VARIABLE}:-}}" ]; then',
        f'  _bd_n="${{_bd_i:-0}}"; _bd_rest="${CHILD_INDICES_VARIABLE},"; _bd_i=',
        '  while [ -n "$_bd_rest" ]; do',
        '    _bd_part="${_bd_rest%%,*}"; _bd_rest="${_bd_rest#*,}"',
        '    _bd_lo="${_bd_part%-*}"; _bd_hi="${_bd_part#*-}"',
        '    if [ "$_bd_n" -le "$((_bd_hi - _bd_lo))" ]; then _bd_i=$((_bd_lo + _bd_n)); break; fi',
        "    _bd_n=$((_bd_n - (_bd_hi - _bd_lo + 1)))",
        "  done",
        "  unset _bd_n _bd_rest _bd_part _bd_lo _bd_hi",
        "fi",
        '_bd_i="${_bd_i:?batchdrop: not an array child}"',
        f'{CHILD_INDEX_VARIABLE}="$_bd_i"',
    ]


def _decode(sweep: Mapping[str, Sequence[str]]) -> list[str]:
    """Lines that set SWEEP_<NAME> from the array index (in `_bd_i`, so a container's own `i` is left be)."""
    lines = _original_index()
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
    lines.append("export " + " ".join([CHILD_INDEX_VARIABLE, *(env_name(axis) for axis in sweep)]))
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


def is_wrapped(command: Sequence[str]) -> bool:
    """Whether `command` is already run by the prelude (`wrap_command`'s)."""
    return len(command) >= 4 and list(command[:2]) == ["sh", "-c"] and command[3] == SHELL_NAME
