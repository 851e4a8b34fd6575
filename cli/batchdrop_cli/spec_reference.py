"""docs/spec.md's reference tables, made from the models so that they cannot drift from them.

`python -m batchdrop_cli.spec_reference` rewrites what lies between each `<!-- generated: <name> -->` and
`<!-- end generated -->` in docs/spec.md: one row per field, with its path, type, default, bounds (read
from the model's constraints), description and example (the model's own `Field(description, examples)`).
The prose around the markers is hand-written and left alone.

The tables of errors are hand-written (what a code means and what to do is not in the code), between
`<!-- checked: <name> -->` and `<!-- end checked -->`, and checked against the layer's source: every
literal problem code it can give is in one, and every code in one is given somewhere.

`--check` changes nothing and exits 1 when docs/spec.md is stale or an errors table is wrong.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

import batchdrop
from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.explain import PATTERN_WORDS
from batchdrop.spec.model import JobSettings, JobSpec

SPEC_REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
LAYER = Path(batchdrop.__file__).resolve().parent
CONFIG_SOURCES = frozenset({Path("platform/config.py")})
"""The layer's modules whose codes are the platform config's, not a spec's."""
END_GENERATED = "<!-- end generated -->"
END_CHECKED = "<!-- end checked -->"
_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
"""What a problem code looks like (`unknown_field`): a message never does."""


@dataclass(frozen=True)
class Row:
    path: str
    type: str
    default: str
    bounds: str
    description: str
    example: str


# ---- the fields, from the models ----------------------------------------------------------------------------------


def _fields(model: type[BaseModel], prefix: str, *, settings: bool) -> Iterator[Row]:
    """`model`'s fields as rows, and those of the models inside it; a spec's and a step's own fields, or (with
    `settings`) the job settings they share."""
    for name, field in model.model_fields.items():
        if issubclass(model, JobSettings) and (name in JobSettings.model_fields) != settings:
            continue
        path = f"{prefix}{name}"
        annotation = annotated(field)
        yield Row(
            path=path,
            type=_type_words(annotation),
            default=_default(field),
            bounds="; ".join(_bounds(annotation)),
            description=field.description or "",
            example=_value(field.examples[0]) if field.examples else "",
        )
        nested, inner = nested_model(annotation)
        if nested is not None:
            yield from _fields(nested, f"{path}{inner}", settings=False)


def annotated(field: FieldInfo) -> Any:
    """The field's annotation with the constraints pydantic took out of it put back."""
    if field.metadata:
        return typing.Annotated[(field.annotation, *field.metadata)]
    return field.annotation


def _parts(annotation: Any) -> tuple[Any, list[Any]]:
    """`Annotated[X | None, c1, c2]` -> (`X`, [c1, c2]): the type, and every constraint on it."""
    constraints: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                constraints.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in {typing.Union, types.UnionType}:
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            assert len(members) == 1, f"a union the reference cannot describe: {annotation}"
            annotation = members[0]
        else:
            return annotation, constraints


def nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds (itself, as list items, or as map values), and how its path goes on."""
    kind, _ = _parts(annotation)
    origin = typing.get_origin(kind)
    if origin is list:
        kind, suffix = _parts(typing.get_args(kind)[0])[0], "[]."
    elif origin is dict:
        kind, suffix = _parts(typing.get_args(kind)[1])[0], ".<name>."
    else:
        suffix = "."
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind, suffix
    return None, ""


_DOC_NAME = re.compile(r"\bdocs/([a-z_-]+\.md)\b")
_SINGULAR = {"characters": "character", "entries": "entry", "items": "item"}
_SIMPLE_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _type_words(annotation: Any) -> str:
    kind, _ = _parts(annotation)
    origin = typing.get_origin(kind)
    if kind in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[kind]
    if origin is Literal:
        return " | ".join(f"`{choice}`" for choice in typing.get_args(kind))
    if origin is list:
        return f"list of {_plural(_type_words(typing.get_args(kind)[0]))}"
    if origin is dict:
        key, value = typing.get_args(kind)
        return f"map {_type_words(key)} → {_type_words(value)}"
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return "mapping"
    raise TypeError(f"a type the reference cannot describe: {kind}")


def _plural(words: str) -> str:
    if "`" in words:
        return f"({words})"
    return words if " " in words else f"{words}s"


def _bounds(annotation: Any) -> list[str]:
    """The constraints on a value in words: its own, then its keys' and items' (or values')."""
    kind, constraints = _parts(annotation)
    origin = typing.get_origin(kind)
    unit = "characters" if kind is str else "entries" if origin is dict else "items"
    words = [_range(constraints, unit)]
    for constraint in constraints:
        if isinstance(constraint, StringConstraints) and constraint.pattern:
            words.append(_pattern_words(str(constraint.pattern)))
    if origin is list:
        inner = _bounds(typing.get_args(kind)[0])
        words.append(f"each item: {', '.join(inner)}" if inner else "")
    elif origin is dict:
        key, value = (", ".join(_bounds(arg)) for arg in typing.get_args(kind))
        words.extend((f"each name: {key}" if key else "", f"each value: {value}" if value else ""))
    return [word for word in words if word]


def _range(constraints: list[Any], unit: str) -> str:
    """`Ge(1)`, `Le(10)` -> "1 to 10"; a length's bounds count `unit`."""
    above: object = None
    low: object = None
    high: object = None
    counts = False
    for constraint in constraints:
        if isinstance(constraint, annotated_types.Gt):
            above = constraint.gt
        elif isinstance(constraint, annotated_types.Ge):
            low = constraint.ge
        elif isinstance(constraint, annotated_types.Le):
            high = constraint.le
        elif isinstance(constraint, annotated_types.MinLen | annotated_types.MaxLen | StringConstraints):
            low = getattr(constraint, "min_length", None) if low is None else low
            high = getattr(constraint, "max_length", None) if high is None else high
            counts = True
    if low is not None and high is not None:
        text = _number(low) if low == high else f"{_number(low)} to {_number(high)}"
    else:
        parts = (
            f"more than {_number(above)}" if above is not None else "",
            f"at least {_number(low)}" if low is not None else "",
            f"at most {_number(high)}" if high is not None else "",
        )
        text = ", ".join(part for part in parts if part)
    if not (text and counts):
        return text
    return f"{text} {_SINGULAR[unit]}" if text == "1" or text.endswith(" 1") else f"{text} {unit}"


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def _pattern_words(pattern: str) -> str:
    """What a pattern asks for, in the words its problems use ("is not a name: use …" reads as "use …")."""
    words = PATTERN_WORDS.get(pattern)
    if words is None:
        return f"matches `{pattern}`"
    return words.split(": ", 1)[1] if words.startswith("is not ") else words


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=True)
    return _value(value)


def _value(value: object) -> str:
    """A value as it may be written in a spec (JSON is YAML's flow style too), in a table cell."""
    return f"`{json.dumps(value, ensure_ascii=False, separators=(', ', ': '))}`"


def _cell(text: str) -> str:
    """`text` in a table cell: a `|` escaped, and a `<` outside code written so that it is not read as HTML."""
    pieces = text.replace("\n", " ").replace("|", "\\|").split("`")
    return "`".join(piece if index % 2 else piece.replace("<", "&lt;") for index, piece in enumerate(pieces))


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| field | type | default | bounds | description | example |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [_cell(cell) for cell in (f"`{row.path}`", row.type, row.default, row.bounds, row.description)]
        cells[-1] = _DOC_NAME.sub(r"[docs/\1](\1)", cells[-1])  # a guide a description names, linked from docs/
        lines.append("| " + " | ".join([*cells, _cell(row.example)]) + " |")
    return "\n".join(lines)


def generated_sections() -> dict[str, str]:
    """Each generated section of docs/spec.md by its marker's name."""
    return {
        "spec fields": table(list(_fields(JobSpec, "", settings=False))),
        "job settings": table(list(_fields(JobSpec, "", settings=True))),
        "platform config fields": table(list(_fields(PlatformConfig, "", settings=False))),
    }


def render(document: str) -> str:
    """`document` with every generated section made anew; a missing marker is an error."""
    for name, content in generated_sections().items():
        start = f"<!-- generated: {name} -->"
        if document.count(start) != 1:
            raise ValueError(f"docs/spec.md needs exactly one {start} … {END_GENERATED}")
        head, rest = document.split(start, 1)
        if END_GENERATED not in rest:
            raise ValueError(f"{start} has no {END_GENERATED} after it")
        _, tail = rest.split(END_GENERATED, 1)
        document = f"{head}{start}\n{content}\n{END_GENERATED}{tail}"
    return document


# ---- the problem codes, from the layer's source -------------------------------------------------------------------


def problem_codes(layer: Path = LAYER) -> dict[str, set[Path]]:
    """Every literal problem code the layer can give, with the modules (relative to `layer`) that give it."""
    trees = {path.relative_to(layer): ast.parse(path.read_text()) for path in sorted(layer.rglob("*.py"))}
    makers = _problem_makers(trees.values())
    found: dict[str, set[Path]] = {}
    for path, tree in trees.items():
        for code in _codes_in(tree, makers):
            found.setdefault(code, set()).add(path)
    return found


def _problem_makers(trees: typing.Iterable[ast.Module]) -> dict[str, set[int]]:
    """Functions that take a `code: str` and make a problem of it (`_whole_file(code, message)`,
    `Document.problem(loc, code, message)`), by name: where among their arguments the code goes."""
    makers: dict[str, set[int]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                arguments = [arg for arg in node.args.args if arg.arg not in {"self", "cls"}]
                for position, arg in enumerate(arguments):
                    if arg.arg == "code" and isinstance(arg.annotation, ast.Name) and arg.annotation.id == "str":
                        makers.setdefault(node.name, set()).add(position)
    return makers


def _codes_in(tree: ast.Module, makers: dict[str, set[int]]) -> Iterator[str]:
    """Each literal code in `tree`, and "" for each candidate that is not one."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            # Problem(code="..."), and any maker given a code by keyword or in its place
            yield from (_text(keyword.value) for keyword in node.keywords if keyword.arg == "code")
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            yield from (_text(node.args[at]) for at in makers.get(name, ()) if at < len(node.args))
        elif isinstance(node, ast.Tuple) and _is_finding(node):
            yield _text(node.elts[1])
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and _is_explanation(node.value):
            yield _text(node.value.elts[0])


def _is_finding(node: ast.Tuple) -> bool:
    """`(where, code, message)`, where `where` is a path held in a name or built (not `("steps", 1, "name")`)."""
    return (
        len(node.elts) == 3 and not isinstance(node.elts[0], ast.Constant | ast.Starred) and _is_message(node.elts[2])
    )


def _is_explanation(node: ast.Tuple) -> bool:
    """`return code, message` (`explain` says pydantic's errors so), the message maybe cut: `cut(message)`."""
    return len(node.elts) == 2 and (_is_message(node.elts[1]) or isinstance(node.elts[1], ast.Call))


def _is_message(node: ast.expr) -> bool:
    """Words for a person: an f-string, a sum of texts, or a text with a space in it."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and " " in node.value
    return isinstance(node, ast.JoinedStr | ast.BinOp)


def _text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.match(node.value):
        return node.value
    return ""


def documented_codes(document: str, name: str) -> list[str]:
    """The codes in the first column of the checked table `name`."""
    start = f"<!-- checked: {name} -->"
    if start not in document or END_CHECKED not in document.split(start, 1)[1]:
        raise ValueError(f"docs/spec.md needs a {start} … {END_CHECKED} table")
    section = document.split(start, 1)[1].split(END_CHECKED, 1)[0]
    return re.findall(r"^\|\s*`([a-z0-9_]+)`", section, flags=re.MULTILINE)


def errors_table_problems(document: str, layer: Path = LAYER) -> list[str]:
    """What is wrong with the errors tables: a code given but not documented, or documented but never given."""
    found = problem_codes(layer)
    found.pop("", None)
    given = {
        "spec errors": {code for code, paths in found.items() if paths - CONFIG_SOURCES},
        "platform config errors": {code for code, paths in found.items() if paths & CONFIG_SOURCES},
    }
    problems: list[str] = []
    for name, codes in given.items():
        documented = documented_codes(document, name)
        repeated = sorted({code for code in documented if documented.count(code) > 1})
        problems.extend(f"{name}: `{code}` is in the table twice" for code in repeated)
        problems.extend(f"{name}: `{code}` is given but not in the table" for code in sorted(codes - set(documented)))
        problems.extend(f"{name}: `{code}` is in the table but never given" for code in sorted(set(documented) - codes))
    return problems


# ---- the command ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m batchdrop_cli.spec_reference",
        description="Regenerate the reference tables of docs/spec.md from the models, and check its errors tables.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if docs/spec.md is stale")
    parser.add_argument("--path", type=Path, default=SPEC_REFERENCE, help="the spec reference (docs/spec.md)")
    args = parser.parse_args(argv)
    current = args.path.read_text()
    try:
        fresh = render(current)
    except ValueError as exc:
        print(f"{args.path}: {exc}", file=sys.stderr)
        return 1
    problems = errors_table_problems(fresh)
    if args.check and fresh != current:
        problems.insert(0, "the generated tables are stale: run python -m batchdrop_cli.spec_reference")
    elif not args.check and fresh != current:
        args.path.write_text(fresh)
        print(f"{args.path}: tables regenerated")
    for problem in problems:
        print(f"{args.path}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
