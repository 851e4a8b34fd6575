"""YAML and JSON syntax errors in words: the parser's own sentence, beside what it means to someone who
writes specs rather than parsers (`documents` reads the files and asks here when one cannot be read)."""

from __future__ import annotations

import yaml

from batchdrop.errors import Problem

_YAML_EXPLANATIONS = (
    ("tab character", "a tab is not allowed for indentation: indent with spaces"),
    (
        "mapping values are not allowed",
        "a `: ` is where YAML expects no new key: check this line's "
        "indentation, or put a value that holds `: ` in quotes",
    ),
    ("unexpected end of stream", "a quote is opened and never closed"),
    ("expected ',' or ']'", "a list opened with `[` is not closed with `]`, or a comma is missing between its items"),
    (
        "expected ',' or '}'",
        "a mapping opened with `{` is not closed with `}`, or a comma is missing between its entries",
    ),
    (
        "expected '-' indicator",
        "a list item (`- …`) and a `key: value` are at the same indentation: check this line's indentation",
    ),
    (
        "expected key",
        "this line does not fit the mapping above it: check its indentation, and look for a stray "
        "`-`, bracket or quote",
    ),
    (
        "document start",
        "the first line is indented more than the lines after it: start every top-level field in column 1",
    ),
    ("but found another document", "the file holds more than one document (a `---` line): keep one spec per file"),
    ("undefined alias", "`*name` refers to an anchor `&name` that is not defined above it"),
    (
        "cannot start any token",
        "a value cannot start with this character (`@`, `` ` ``, `%` or a tab): put the value in quotes",
    ),
    ("while scanning a simple key", "a `key: value` line is missing its `:`, or a key runs over two lines"),
)
"""What each of the YAML parser's sentences means, for someone who writes specs rather than parsers."""
_JSON_EXPLANATIONS = (
    ("Illegal trailing comma", "there is a comma after the last item: JSON allows none there"),
    (
        "property name enclosed in double quotes",
        'a key must be in double quotes (`"name"`), and no comma may follow the last entry',
    ),
    ("Expecting ',' delimiter", "a comma is missing between two items, or a bracket or brace is not closed"),
    ("Expecting ':' delimiter", "a key must be followed by `:` and its value"),
    (
        "Expecting value",
        "a value is missing or is not JSON: text goes in double quotes; true, false and null are lower case",
    ),
    ("Extra data", "there is more after the end of the document: an extra `}` or `]`, or two documents in one file"),
    ("Invalid control character", "a line break or tab inside quoted text: write it as \\n or \\t"),
    ("Unterminated string", "a quote is opened and never closed"),
    ("Invalid \\escape", "a backslash in text must be doubled (`\\\\`) unless it starts an escape such as `\\n`"),
)
"""What each of the JSON parser's sentences means."""


def yaml_syntax_problem(text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """The parser's sentence, beside what it means; a tab in the indentation is named as such."""
    mark = exc.problem_mark or exc.context_mark
    reason = ", ".join(part for part in (exc.context, exc.problem) if part) or "the YAML cannot be read"
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    tabbed = _tab_indented_line(text, line)
    if tabbed is not None:
        message = f"this is not valid YAML: a tab is not allowed for indentation (line {tabbed}); indent with spaces"
        return Problem(path="", code="yaml_syntax", message=f"{message} ({reason})", line=tabbed, column=1)
    meaning = next((words for clue, words in _YAML_EXPLANATIONS if clue in reason), None)
    message = f"this is not valid YAML: {meaning} ({reason})" if meaning else f"this is not valid YAML: {reason}"
    return Problem(path="", code="yaml_syntax", message=message, line=line, column=column)


def _tab_indented_line(text: str, up_to: int | None) -> int | None:
    """The first line (up to the error's) whose indentation holds a tab."""
    for number, line in enumerate(text.splitlines()[: up_to or None], start=1):
        indentation = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indentation and line.strip():
            return number
    return None


def json_syntax_message(reason: str) -> str:
    meaning = next((words for clue, words in _JSON_EXPLANATIONS if clue in reason), None)
    return f"this is not valid JSON: {meaning} ({reason})" if meaning else f"this is not valid JSON: {reason}"
