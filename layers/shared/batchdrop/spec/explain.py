"""Pydantic's validation errors, said in words a data scientist understands."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from batchdrop.errors import Loc, Problem, cut, echo
from batchdrop.limits import SUGGESTED_NAME_CHARS
from batchdrop.spec.documents import Document

PATTERN_WORDS: dict[str, str] = {}
"""Regex -> what it asks for in words; each model registers its patterns here."""


def describe_pattern(pattern: str, words: str) -> str:
    """Register how to say `pattern` in words, and return the pattern."""
    PATTERN_WORDS[pattern] = words
    return pattern


def problems_from_validation_error(
    error: ValidationError, document: Document, model: type[BaseModel]
) -> Iterator[Problem]:
    """Each error in words, where it is written; lazily, so a capped list explains only what it shows."""
    seen: set[tuple[Loc, str]] = set()
    for detail in error.errors(include_url=False):
        loc: Loc = tuple(detail["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        code, message = _explain(detail, loc, is_key, model)
        if (loc, code) in seen:
            continue
        seen.add((loc, code))
        yield document.problem(loc, code, message)


_WRONG_TYPE = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list, e.g. [a, b]",
    "dict_type": "must be a mapping of names to values",
    "model_type": "must be a mapping of names to values",
    "model_attributes_type": "must be a mapping of names to values",
}
"""pydantic's type errors, in words (what was given follows)."""
_OUT_OF_RANGE = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
"""pydantic's bound errors: which bound of the error's context, in words."""


def _explain(detail: Any, loc: Loc, is_key: bool, model: type[BaseModel]) -> tuple[str, str]:
    kind: str = detail["type"]
    ctx: dict[str, Any] = detail.get("ctx") or {}
    value = detail.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _fields_at(model, loc[:-1])
        close = len(name) <= SUGGESTED_NAME_CHARS
        hint = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6) if close else []
        suggestion = f"; did you mean `{hint[0]}`?" if hint else f"; allowed here: {', '.join(allowed)}"
        return "unknown_field", f"unknown field `{cut(name)}`{suggestion}"
    if kind == "missing":
        return "missing", "this field is required"
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(ctx.get("pattern", ""), f"must match {ctx.get('pattern')}")
        subject = f"the name `{cut(str(loc[-1]))}`" if is_key else "this value"
        return "bad_format", f"{subject} {words}"
    if kind in {"string_type"}:
        if isinstance(value, bool | int | float):
            return "wrong_type", f'must be text; put the value in quotes, e.g. "{cut(_as_text(value))}"'
        return "wrong_type", f"must be text, not {_type_words(value)}"
    if kind in _WRONG_TYPE:
        return "wrong_type", f"{_WRONG_TYPE[kind]}, not {_type_words(value)}"
    if kind == "finite_number":
        return "wrong_type", "must be a finite number"
    if kind == "literal_error":
        return "not_allowed", f"must be {ctx.get('expected')}, not {echo(value)}"
    if kind in _OUT_OF_RANGE:
        bound, words = _OUT_OF_RANGE[kind]
        return "out_of_range", f"must be {words} {ctx[bound]}, not {echo(value)}"
    if kind in {"string_too_short", "too_short"}:
        least = ctx.get("min_length")
        unit = "character" if kind == "string_too_short" else "item"
        return "too_short", f"must have at least {least} {unit}{'s' if least != 1 else ''}"
    if kind in {"string_too_long", "too_long"}:
        most = ctx.get("max_length")
        unit = "characters" if kind == "string_too_long" else "items"
        return "too_long", f"may have at most {most} {unit}"
    if kind == "value_error":
        return "invalid", cut(str(ctx.get("error", detail["msg"])))
    return kind, cut(str(detail["msg"]))


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_words(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"true/false ({_as_text(value)})"
    if isinstance(value, int | float):
        return f"the number {echo(value)}"
    if isinstance(value, str):
        return f"the text {echo(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found at `loc` under `model`, for suggestions."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` -> `X`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in {typing.Union, types.UnionType}:
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
