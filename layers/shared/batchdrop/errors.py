"""Typed errors and the `Problem` a user is shown for bad input."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, field_validator

from batchdrop.limits import ECHOED_LIST_ITEMS, ECHOED_VALUE_CHARS, MAX_PROBLEMS, PROBLEM_MESSAGE_CHARS

Loc = tuple[str | int, ...]


def _shortened_note(length: int) -> str:
    return f"… (shortened from {length:,} characters)"


def cut(text: str) -> str:
    """A user's text as a message quotes it: at most `ECHOED_VALUE_CHARS` of it, and a note if it was cut."""
    if len(text) <= ECHOED_VALUE_CHARS:
        return text
    return text[:ECHOED_VALUE_CHARS] + _shortened_note(len(text))


def echo(value: object) -> str:
    """A user's value as Python writes it (`'text'`, `8`), cut like `cut`, without writing out a huge one first."""
    if isinstance(value, str) and len(value) > ECHOED_VALUE_CHARS:
        return f"{value[:ECHOED_VALUE_CHARS]!r}{_shortened_note(len(value))}"
    return cut(repr(value))


def echo_list(texts: Iterable[str], quote: str = "`") -> str:
    """`` `a`, `b` `` (each in `quote`): at most `ECHOED_LIST_ITEMS` of them, each cut, then "and N more"."""
    items = list(texts)
    shown = ", ".join(f"{quote}{cut(text)}{quote}" for text in items[:ECHOED_LIST_ITEMS])
    hidden = len(items) - ECHOED_LIST_ITEMS
    return f"{shown} and {hidden:,} more" if hidden > 0 else shown


class Problem(BaseModel):
    """One thing wrong with a spec or a config, said so a data scientist can fix it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str
    """Where, as `steps[1].resources.gpus`; empty for the whole file."""
    message: str
    code: str
    """A stable, machine-readable name of the kind of problem, e.g. `unknown_field`."""
    line: int | None = None
    """1-based line in the YAML source, where known."""
    column: int | None = None

    @field_validator("path", "message")
    @classmethod
    def _bounded(cls, text: str) -> str:
        """A safety net under `cut`: whatever a message quotes, it stays within `PROBLEM_MESSAGE_CHARS`."""
        if len(text) <= PROBLEM_MESSAGE_CHARS:
            return text
        note = _shortened_note(len(text))
        return text[: PROBLEM_MESSAGE_CHARS - len(note)] + note

    def render(self) -> str:
        where = ""
        if self.line is not None:
            where = f"line {self.line}, column {self.column}: " if self.column is not None else f"line {self.line}: "
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"


def render_loc(loc: Loc) -> str:
    """`("steps", 1, "resources")` -> `steps[1].resources`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{cut(part)}"
        else:
            text = cut(part)
    return text


def capped(problems: Iterable[Problem]) -> list[Problem]:
    """The first `MAX_PROBLEMS` problems, then one saying there may be more; the rest are never made.

    Pass a generator: each problem costs a lookup of where it is written, and a file can hold
    tens of thousands of mistakes that no one would read past the first screen.
    """
    found = list(itertools.islice(problems, MAX_PROBLEMS + 1))
    if len(found) <= MAX_PROBLEMS:
        return found
    return [
        *found[:MAX_PROBLEMS],
        Problem(
            path="",
            code="too_many_problems",
            message=f"batchdrop stopped after {MAX_PROBLEMS} problems; there may be more: "
            "fix these and drop the file again",
        ),
    ]


class BatchdropError(Exception):
    """Base of every error batchdrop raises on purpose."""


class InvalidInput(BatchdropError):
    """Input that batchdrop refuses, with the problems found in it (at most `MAX_PROBLEMS`, see `capped`)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = capped(problems)
        super().__init__("; ".join(problem.render() for problem in self.problems))


class SpecRejected(InvalidInput):
    """A job spec that cannot be submitted: invalid, or not routable."""


class ConfigInvalid(InvalidInput):
    """A platform config that breaks the model or an invariant."""


class ConfigUnavailable(BatchdropError):
    """The platform config could not be read from where it was said to be."""
