"""Reading spec documents: what YAML users write works, positions are kept, and an empty object is a problem."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from batchdrop.errors import InvalidInput
from batchdrop.gateways.bucket import JobsBucket, SpecUnreadable
from batchdrop.spec.documents import load_document
from batchdrop.store.records import SpecSource


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


@pytest.mark.parametrize(
    "text", [b"version: 1\nresources:\n\tvcpus: 2\n", b"version: 1\nresources:\n  vcpus: 2\n\tgpus: 1\n"]
)
def test_a_tab_in_the_indentation_is_named_with_its_line(text: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_document(text, "yaml")
    [problem] = caught.value.problems
    line = text.decode().splitlines().index(next(row for row in text.decode().splitlines() if row.startswith("\t"))) + 1
    assert f"a tab is not allowed for indentation (line {line})" in problem.message
    assert problem.line == line


@pytest.mark.parametrize(
    ("text", "document_format", "meaning", "parser"),
    [
        (b"name: [a, b\n", "yaml", "not closed with `]`", "did not find expected ',' or ']'"),
        (b"name: it is: odd\n", "yaml", "put a value that holds `: ` in quotes", "mapping values are not allowed"),
        (b"name: 'open\n", "yaml", "a quote is opened and never closed", "unexpected end of stream"),
        (b"  name: a\nversion: 1\n", "yaml", "start every top-level field in column 1", "document start"),
        (b"name: @x\n", "yaml", "put the value in quotes", "cannot start any token"),
        (b'{"name": "a",}', "json", "a comma after the last item", "Illegal trailing comma"),
        (b"{'name': 'a'}", "json", "a key must be in double quotes", "Expecting property name"),
        (b'{"name": "a" "version": 1}', "json", "a comma is missing", "Expecting ',' delimiter"),
        (b'{"name": yes}', "json", "text goes in double quotes", "Expecting value"),
        (b'{"name": "a"}}', "json", "more after the end of the document", "Extra data"),
    ],
)
def test_syntax_errors_say_what_they_mean_beside_the_parsers_sentence(
    text: bytes, document_format: str, meaning: str, parser: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_document(text, document_format)  # type: ignore[arg-type]
    [problem] = caught.value.problems
    assert meaning in problem.message
    assert parser in problem.message
    assert "\n" not in problem.message, "one line"
    assert problem.line is not None


# ---------------------------------------------------------------------- reading a spec object from S3

SOURCE = SpecSource(bucket="jobs", key="incoming/vision/empty.yaml", version_id="v1")


@pytest.fixture
def bucket() -> Iterator[tuple[JobsBucket, Stubber]]:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(s3) as stubber:
        yield JobsBucket(s3), stubber
        stubber.assert_no_pending_responses()


def test_a_file_said_to_be_empty_is_rejected_without_a_request(bucket: tuple[JobsBucket, Stubber]) -> None:
    jobs, _ = bucket  # the Stubber has no response queued: any request would fail the test
    with pytest.raises(SpecUnreadable) as caught:
        jobs.read_spec(SOURCE, size=0)
    assert (caught.value.problem.code, caught.value.problem.message) == ("empty", "the file is empty")
    assert caught.value.write_receipt


def test_an_empty_file_of_unknown_size_is_rejected_when_s3_refuses_its_range(
    bucket: tuple[JobsBucket, Stubber],
) -> None:
    jobs, stubber = bucket  # S3 answers a Range GET of a zero-byte object with 416 InvalidRange
    stubber.add_client_error("get_object", "InvalidRange", http_status_code=416)
    with pytest.raises(SpecUnreadable) as caught:
        jobs.read_spec(SOURCE)
    assert (caught.value.problem.code, caught.value.problem.message) == ("empty", "the file is empty")
    assert caught.value.write_receipt


def test_an_empty_body_read_from_s3_is_the_parsers_to_reject(bucket: tuple[JobsBucket, Stubber]) -> None:
    jobs, stubber = bucket  # an emulator may answer 200 with no bytes: the parser says "empty"
    stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(b""), 0)})
    assert jobs.read_spec(SOURCE) == b""
    with pytest.raises(InvalidInput) as caught:
        load_document(b"", "yaml")
    assert caught.value.problems[0].code == "empty"


def test_a_value_yaml_recognises_but_python_cannot_build_is_a_problem_not_a_crash() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_document(b"version: 1\nname: 2020-13-45\n", "yaml")  # a date's shape, month 13
    problem = caught.value.problems[0]
    assert (problem.path, problem.code, problem.line) == ("name", "bad_value", 2)
    assert "'2020-13-45' cannot be read as timestamp" in problem.message
