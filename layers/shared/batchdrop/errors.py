"""Typed errors and the `Problem` a user is shown for bad input."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

Loc = tuple[str | int, ...]


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
            text += f".{part}"
        else:
            text = part
    return text


class BatchdropError(Exception):
    """Base of every error batchdrop raises on purpose."""


class InvalidInput(BatchdropError):
    """Input that batchdrop refuses, with every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(problem.render() for problem in problems))


class SpecRejected(InvalidInput):
    """A job spec that cannot be submitted: invalid, or not routable."""


class ConfigInvalid(InvalidInput):
    """A platform config that breaks the model or an invariant."""


class ConfigUnavailable(BatchdropError):
    """The platform config could not be read from where it was said to be."""
