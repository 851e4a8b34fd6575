"""Reading YAML and JSON: what YAML users write works, and positions are kept."""

from __future__ import annotations

import pytest

from batchdrop.documents import load_document
from batchdrop.errors import InvalidInput


def test_yaml_keys_are_read_as_written_not_as_yaml_11_booleans() -> None:
    document = load_document(b"notify: {on: [failed]}\nyes: 1\n", "yaml")
    assert document.data == {"notify": {"on": ["failed"]}, "yes": 1}


def test_anchors_and_merge_keys_reuse_settings() -> None:
    raw = b"base: &base {vcpus: 2, memory_mib: 4096}\nbig:\n  <<: *base\n  vcpus: 8\n"
    document = load_document(raw, "yaml")
    assert document.data["big"] == {"vcpus": 8, "memory_mib": 4096}


def test_positions_point_at_keys_and_list_items() -> None:
    document = load_document(b"version: 1\nsteps:\n  - name: a\n  - name: b\n", "yaml")
    assert document.position_of(("steps", 1, "name")) is not None
    assert document.position_of(("steps", 1, "name")).line == 4  # type: ignore[union-attr]
    assert document.position_of(("steps", 1, "missing")).line == 4  # type: ignore[union-attr]


def test_byte_order_mark_is_accepted() -> None:
    assert load_document("\ufeffversion: 1\n".encode(), "yaml").data == {"version": 1}


def test_control_characters_are_refused_with_a_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_document(b"version: 1\nname: a\x07b\n", "yaml")
    assert caught.value.problems[0].code == "yaml_syntax"
    assert caught.value.problems[0].line == 2


def test_json_documents_have_no_positions_but_parse() -> None:
    document = load_document(b'{"version": 1, "env": {"A": "b"}}', "json")
    assert document.data == {"version": 1, "env": {"A": "b"}}
    assert document.position_of(("env", "A")) is None
