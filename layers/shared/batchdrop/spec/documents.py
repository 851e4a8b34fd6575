"""Safe loading of YAML and JSON documents that remembers where each value was written.

Specs come from people, and configs from other teams: a file may be huge, not
UTF-8, nested a thousand deep, or an alias bomb (a few lines of YAML that
expand to billions of nodes). Every such file becomes a `Problem`, never an
exception that escapes and never a hung function. YAML values keep their line
and column so that each problem can say where it is.
"""

from __future__ import annotations

import json
import operator
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from batchdrop.errors import InvalidInput, Loc, Problem, cut, echo, render_loc
from batchdrop.limits import MAX_PROBLEMS
from batchdrop.spec.syntax import json_syntax_message, yaml_syntax_problem

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = 20
"""Mappings and lists nested deeper than this are refused; a real spec needs 5."""
MAX_NODES = 50_000
"""Values after alias expansion; an alias bomb passes this long before it hurts."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"

_CLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_CLoader):  # type: ignore[misc,valid-type]
    """libyaml's safe loader with a memo of how plain scalars resolve.

    PyYAML asks a Python resolver for the tag of every scalar, and that is
    most of the cost of reading a spec. A tag depends only on the scalar's
    text, and the same texts (`version`, `resources`, `8`) recur in every
    spec, so the answers are remembered (up to a bound).
    """

    _memo: dict[str, str] = {}  # noqa: RUF012  # shared on purpose: it is a cache of a pure function
    # Path resolvers are never used; libyaml's composer still calls these twice per node. C-level
    # no-ops with the same arity spare a Python frame each time (about 15% of composing).
    descend_resolver = staticmethod(operator.is_)
    ascend_resolver = staticmethod(tuple)

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR_TAG  # quoted: always text
            tag = self._memo.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._memo) < 10_000:
                    self._memo[value] = tag
            return tag
        return _MAP_TAG if kind is yaml.MappingNode else _SEQ_TAG


DocumentFormat = Literal["yaml", "json"]


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass
class Document:
    """A parsed mapping and, for YAML, the node tree that says where each value was written."""

    data: Any
    """A mapping once `load_document` returns it."""
    root: yaml.Node | None = None
    _keys: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = field(default_factory=dict, repr=False)
    """Each mapping node's entries by key, made on the first lookup in it (by the node's id)."""

    def position_of(self, loc: Loc) -> Position | None:
        """Where `loc` is written: its key, or list item, or the nearest enclosing one found."""
        if self.root is None:
            return None
        found = node = self.root
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                entry = self._entries(node).get(part) if isinstance(part, str) else None
                if entry is None:
                    break
                found, node = entry
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                found = node = node.value[part]
            else:
                break
        return _mark(found)

    def _entries(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Indexed once per mapping: a scan per lookup made a problem per key of a huge mapping quadratic."""
        entries = self._keys.get(id(node))
        if entries is None:
            entries = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    entries.setdefault(key.value, (key, value))  # the first, as a scan would find
            self._keys[id(node)] = entries
        return entries

    def problems(self, findings: Iterable[tuple[Loc, str, str]]) -> Iterator[Problem]:
        """Each (where, code, message) as a problem, lazily: a capped list looks up only those it keeps."""
        return (self.problem(*finding) for finding in findings)

    def problem(self, loc: Loc, code: str, message: str) -> Problem:
        position = self.position_of(loc)
        return Problem(
            path=render_loc(loc),
            code=code,
            message=message,
            line=position.line if position else None,
            column=position.column if position else None,
        )


def format_for(name: str) -> DocumentFormat | None:
    """The format a file name promises, by its suffix."""
    lowered = name.lower()
    if lowered.endswith((".yaml", ".yml")):
        return "yaml"
    if lowered.endswith(".json"):
        return "json"
    return None


def load_document(raw: bytes, document_format: DocumentFormat) -> Document:
    """Parse `raw` into a mapping, or raise `InvalidInput` saying why it is not one."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidInput([too_large(len(raw))])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            [
                Problem(
                    path="",
                    code="not_utf8",
                    message=f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                    f"at offset {exc.start}); save it as UTF-8",
                    line=line,
                )
            ]
        ) from exc
    if not text.strip():
        raise InvalidInput([empty_file()])
    document = _load_yaml(text) if document_format == "yaml" else _load_json(text)
    if not isinstance(document.data, dict):
        kind = "nothing (null)" if document.data is None else f"a {_kind_of(document.data)}"
        raise InvalidInput(
            [
                _whole_file(
                    "not_a_mapping",
                    f"the file must hold a mapping of field names to values, but it is {kind}",
                )
            ]
        )
    return document


def too_large(size: int) -> Problem:
    return _whole_file(
        "too_large", f"the file is {size / 1024:.0f} KiB; it may be at most {MAX_DOCUMENT_BYTES // 1024} KiB"
    )


def size_problem(size: int) -> Problem | None:
    """Why a file of `size` bytes cannot be a spec, known before reading any of it: too large, or
    empty; None when its size is fine. The stack and `batchdrop submit` ask the same."""
    if size > MAX_DOCUMENT_BYTES:
        return too_large(size)
    if size == 0:
        return empty_file()
    return None


def empty_file(detail: str = "") -> Problem:
    """An object with no bytes (or nothing but whitespace or comments): a rejection like any bad file."""
    return _whole_file("empty", f"the file is empty{detail}")


def _whole_file(code: str, message: str) -> Problem:
    return Problem(path="", code=code, message=message)


def _kind_of(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "text value"
    return f"single {type(value).__name__} value"


class _Enough(Exception):
    """Stops a walk that has found more problems than anyone will read (`MAX_PROBLEMS`)."""


class _Abort(Exception):
    """Stops a walk that must not go on (too deep, too many nodes)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _load_yaml(text: str) -> Document:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise InvalidInput([empty_file(": it holds only comments")])
        builder = _YamlBuilder(loader)
        try:
            data = builder.build(root, (), 0)
        except _Abort as abort:
            raise InvalidInput([abort.problem]) from None
        except _Enough:
            raise InvalidInput(builder.problems) from None
        if builder.problems:
            raise InvalidInput(builder.problems)
        return Document(data=data, root=root)
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput([yaml_syntax_problem(text, exc)]) from exc
    except yaml.reader.ReaderError as exc:
        raise InvalidInput(
            [
                Problem(
                    path="",
                    code="yaml_syntax",
                    message=f"this is not valid YAML: {exc.reason} (character {exc.character!r})",
                    line=text.count("\n", 0, exc.position) + 1,
                )
            ]
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidInput([_whole_file("yaml_syntax", f"this is not valid YAML: {exc}")]) from exc
    finally:
        loader.dispose()


def _mark(node: yaml.Node) -> Position:
    return Position(line=node.start_mark.line + 1, column=node.start_mark.column + 1)


class _YamlBuilder:
    """Turns a composed YAML node tree into plain Python, counting every value.

    PyYAML's own constructor resolves aliases by reference, so an alias bomb
    costs nothing until something walks it; this walk expands aliases as it
    goes and stops at `MAX_NODES`. Mapping keys are taken as written (YAML 1.1
    would read the key `on` as `True`), and duplicate keys are errors where
    PyYAML silently keeps the last.
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.nodes = 0
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node, loc: Loc, code: str, message: str) -> Problem:
        mark = _mark(node)
        return Problem(path=render_loc(loc), code=code, message=message, line=mark.line, column=mark.column)

    def report(self, node: yaml.Node, loc: Loc, code: str, message: str) -> None:
        """Note a problem and go on; stop the walk once there are more than `MAX_PROBLEMS`."""
        self.problems.append(self.problem(node, loc, code, message))
        if len(self.problems) > MAX_PROBLEMS:
            raise _Enough

    def build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Abort(
                self.problem(
                    node,
                    loc,
                    "too_many_values",
                    f"the file expands to more than {MAX_NODES:,} values "
                    "(are anchors and aliases repeating each other?)",
                )
            )
        if depth > MAX_DEPTH:
            raise _Abort(self.problem(node, loc, "too_deep", f"values are nested more than {MAX_DEPTH} levels deep"))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                self.report(node, loc, "yaml_tag", f"the YAML tag {cut(node.tag)} is not allowed")
                return None
            items = []
            for index, item in enumerate(node.value):
                if type(item) is yaml.ScalarNode and item.tag == _STR_TAG:  # most values: no call needed
                    self.nodes += 1
                    items.append(item.value)
                else:
                    items.append(self.build(item, (*loc, index), depth + 1))
            return items
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        value = node.value
        try:
            if tag == _INT_TAG and value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)  # plain decimals, without the constructor's generality (0777 is octal)
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            self.report(node, loc, "yaml_tag", f"the value {echo(value)} cannot be read (tag {cut(tag)})")
        except ValueError:  # the resolver's patterns let through what Python will not build
            if tag == _INT_TAG:
                digits = sys.get_int_max_str_digits()
                self.report(node, loc, "bad_number", f"this number is {len(value):,} digits long; at most {digits:,}")
            else:
                self.report(
                    node, loc, "bad_value", f"the value {echo(value)} cannot be read as {tag.rsplit(':', 1)[-1]}"
                )
        return None

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.report(node, loc, "yaml_tag", f"the YAML tag {cut(node.tag)} is not allowed")
            return {}
        result: dict[str, Any] = {}
        merged: list[dict[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, loc, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.report(key_node, loc, "bad_key", "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            if key in result:
                self.report(key_node, (*loc, key), "duplicate_key", f"`{cut(key)}` is given twice in the same mapping")
                continue
            if type(value_node) is yaml.ScalarNode and value_node.tag == _STR_TAG:  # most values: no call needed
                self.nodes += 1
                result[key] = value_node.value
            else:
                result[key] = self.build(value_node, (*loc, key), depth + 1)
        for source in merged:
            for key, value in source.items():
                result.setdefault(key, value)
        return result

    def _merge_sources(self, node: yaml.Node, loc: Loc, depth: int) -> list[dict[str, Any]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        built = []
        for source in sources:
            value = self.build(source, loc, depth + 1)
            if isinstance(value, dict):
                built.append(value)
            else:
                self.report(source, loc, "bad_merge", "`<<` must merge a mapping")
        return built


def _load_json(text: str) -> Document:
    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKey(key)
            result[key] = value
        return result

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        data = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            [
                Problem(
                    path="",
                    code="json_syntax",
                    message=json_syntax_message(exc.msg),
                    line=exc.lineno,
                    column=exc.colno,
                )
            ]
        ) from exc
    except _DuplicateKey as exc:
        raise InvalidInput(
            [_whole_file("duplicate_key", f"`{cut(exc.key)}` is given twice in the same object")]
        ) from exc
    except ValueError as exc:
        raise InvalidInput([_whole_file("json_syntax", f"this is not valid JSON: {exc}")]) from exc
    except RecursionError as exc:
        raise InvalidInput([_whole_file("too_deep", f"values are nested more than {MAX_DEPTH} levels deep")]) from exc
    _check_depth(data, (), 0)
    return Document(data=data)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _check_depth(value: Any, loc: Loc, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(
            [
                Problem(
                    path=render_loc(loc),
                    code="too_deep",
                    message=f"values are nested more than {MAX_DEPTH} levels deep",
                )
            ]
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _check_depth(item, (*loc, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_depth(item, (*loc, index), depth + 1)
