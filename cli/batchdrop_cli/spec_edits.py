"""`batchdrop rerun --set STEP.PATH=VALUE`: edits to a spec's data, by step, checked against the spec's own
fields (its JSON Schema) before anything is asked of AWS. Whether the edited spec is valid is the layer's
to say (`reruns.request_problems`); this only finds where each value goes, and says what it changed."""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from batchdrop.errors import InvalidInput
from batchdrop.spec.documents import load_document
from batchdrop.spec.model import SINGLE_STEP, JobSettings, JobSpec
from batchdrop_cli.operations import OperationFailed

STEP_FIELDS = (*JobSettings.model_fields, "depends_on")
"""What `--set` may change of a step: its settings (a single job's too) and, in a pipeline, what it
waits for; never its name, which is how the earlier run's jobs are matched to it."""


class EditInvalid(OperationFailed):
    """A `--set` that names no step or no field of one (the command line exits 2 with the message)."""


@dataclass(frozen=True)
class SpecEdit:
    step: str
    path: tuple[str, ...]
    value: str
    """As given; read as a YAML scalar unless the field holds text."""

    @property
    def target(self) -> str:
        return ".".join((self.step, *self.path))


@dataclass(frozen=True)
class SpecChange:
    edit: SpecEdit
    before: Any
    """The step's value before, inherited from the top level or not; None when it had none."""
    after: Any

    def words(self) -> str:
        before = "not set" if self.before is None else _shown(self.before)
        return f"{self.edit.target}: {before} → {_shown(self.after)}"


def parse_edits(arguments: Sequence[str]) -> list[SpecEdit]:
    """Each `STEP.PATH=VALUE` as an edit; a malformed one is refused before anything is read."""
    edits = []
    for argument in arguments:
        target, equals, value = argument.partition("=")
        parts = target.strip().split(".")
        if not equals or len(parts) < 2 or not all(parts):
            raise EditInvalid(
                f"--set {argument!r}: give STEP.FIELD=VALUE, e.g. train.resources.memory_mib=65536 "
                f"(`{SINGLE_STEP}` is the step of a spec without steps)"
            )
        edits.append(SpecEdit(step=parts[0], path=tuple(parts[1:]), value=value))
    return edits


def apply_edits(data: dict[str, Any], edits: Sequence[SpecEdit]) -> tuple[dict[str, Any], list[SpecChange]]:
    """A copy of a spec's data with every edit made, in order, and what each changed."""
    edited = copy.deepcopy(data)
    return edited, [_apply(edited, edit) for edit in edits]


def _apply(data: dict[str, Any], edit: SpecEdit) -> SpecChange:
    step = _step_data(data, edit)
    leaf = _leaf_schema(edit)
    holder, where = step, edit.step
    for depth, key in enumerate(edit.path[:-1]):
        if holder.get(key) is None:
            # A step's own value replaces the top-level one whole (resources, retries) or merges over it
            # (env, parameters, tags): starting from the top-level one is right for both.
            inherited = data.get(key) if depth == 0 and holder is not data else None
            holder[key] = copy.deepcopy(inherited) if isinstance(inherited, dict) else {}
        if not isinstance(holder[key], dict):
            raise EditInvalid(
                f"--set {edit.target}: `{where}.{key}` is not a mapping in the spec: nothing to set in it"
            )
        holder, where = holder[key], f"{where}.{key}"
    key = edit.path[-1]
    before = holder.get(key)
    if before is None and len(edit.path) == 1 and holder is not data:
        before = data.get(key)  # the top-level default the step had
    after: Any = edit.value if _holds_text(leaf) else _scalar(edit.value)
    holder[key] = after
    return SpecChange(edit=edit, before=before, after=after)


def _leaf_schema(edit: SpecEdit) -> dict[str, Any]:
    """The schema of the field an edit sets, or an error naming the fields there are where it goes astray."""
    schema: dict[str, Any] = _spec_schema()["$defs"]["Step"]
    where = edit.step
    for depth, key in enumerate(edit.path):
        schema = _field_schema(schema, key, where, edit.target, top=depth == 0)
        where = f"{where}.{key}"
    return schema


def _step_data(data: dict[str, Any], edit: SpecEdit) -> dict[str, Any]:
    steps = data.get("steps")
    if not isinstance(steps, list):
        if edit.step != SINGLE_STEP:
            raise EditInvalid(f"--set {edit.target}: the spec has no steps; its one job is the step `{SINGLE_STEP}`")
        return data
    named = {step.get("name"): step for step in steps if isinstance(step, dict)}
    if edit.step not in named:
        known = ", ".join(str(step) for step in named)
        raise EditInvalid(f"--set {edit.target}: the spec has no step `{edit.step}`; its steps are {known}")
    return named[edit.step]


def _field_schema(schema: dict[str, Any], key: str, where: str, target: str, *, top: bool) -> dict[str, Any]:
    """The schema of `key` in a mapping of `schema`, or an error naming the fields there are."""
    known: list[str] = []
    for option in _options(schema):
        properties: dict[str, dict[str, Any]] = option.get("properties", {})
        if key in properties and (not top or key in STEP_FIELDS):
            return properties[key]
        patterns: dict[str, dict[str, Any]] = option.get("patternProperties", {})
        if patterns:  # a map such as env: any name (the spec's rules judge it)
            return next(iter(patterns.values()))
        known += [name for name in properties if not top or name in STEP_FIELDS]
    if not known:
        raise EditInvalid(f"--set {target}: `{where}` holds a value, not fields: `{key}` leads nowhere")
    if top and key == "name":
        raise EditInvalid(f"--set {target}: a step's name cannot be set: the earlier run's jobs are matched by it")
    close = [name for name in known if key.startswith(name)] or difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    raise EditInvalid(f"--set {target}: `{key}` is not a field of `{where}`{hint}; its fields are {', '.join(known)}")


@cache
def _spec_schema() -> dict[str, Any]:
    return JobSpec.model_json_schema()


def _options(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """What a value of `schema` may be, references followed, null left out."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _options(_spec_schema()["$defs"][name])
    if "anyOf" in schema:
        return [option for choice in schema["anyOf"] for option in _options(choice)]
    return [] if schema.get("type") == "null" else [schema]


def _holds_text(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "string" for option in _options(schema))


def _scalar(text: str) -> Any:
    """A value as a spec file would read it: `7` a number, `true` a flag, `[75]` a list; else the text."""
    try:
        return load_document(f"value: {text}".encode(), "yaml").data["value"]
    except InvalidInput:
        return text


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
