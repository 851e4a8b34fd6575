"""Bad specs: every one is refused with a message that says what is wrong and where.

Each case is a whole file as a user would write it, the field path the problem
must name, its code, words the message must contain, and (for YAML) the line.
"""

from __future__ import annotations

import textwrap

import pytest

from batchdrop.errors import Problem, SpecRejected
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.planning import check_and_plan
from batchdrop.spec.parse import parse_spec

HEADER = "version: 1\nname: probe\njob_definition: trainer\n"
RESOURCES = "resources: {vcpus: 2, memory_mib: 4096}\n"


def spec(body: str, *, header: bool = True, resources: bool = True) -> str:
    text = textwrap.dedent(body)
    return (HEADER if header else "") + (RESOURCES if resources else "") + text


def rejected(text: str | bytes, filename: str = "spec.yaml") -> list[Problem]:
    raw = text.encode() if isinstance(text, str) else text
    with pytest.raises(SpecRejected) as caught:
        parse_spec(raw, filename)
    return caught.value.problems


def find(problems: list[Problem], path: str, code: str) -> Problem:
    for problem in problems:
        if problem.path == path and problem.code == code:
            return problem
    rendered = "\n".join(f"{p.path} [{p.code}] {p.message}" for p in problems)
    raise AssertionError(f"no {code} problem at {path!r}; got:\n{rendered}")


SHAPE_CASES = [
    # (id, file text, path, code, words in the message, line)
    (
        "typo-top-level",
        spec("job_defintion: x\n"),
        "job_defintion",
        "unknown_field",
        "did you mean `job_definition`",
        5,
    ),
    (
        "typo-in-resources",
        spec("resources: {vcpus: 2, memory_mib: 4096, gpu: 1}\n", resources=False),
        "resources.gpu",
        "unknown_field",
        "did you mean `gpus`",
        4,
    ),
    ("missing-version", "name: probe\njob_definition: trainer\n" + RESOURCES, "version", "missing", "required", 1),
    ("version-2", spec("").replace("version: 1", "version: 2"), "version", "out_of_range", "at most 1", 1),
    ("version-as-text", spec("").replace("version: 1", 'version: "1"'), "version", "wrong_type", "whole number", 1),
    (
        "name-with-spaces",
        spec("").replace("name: probe", "name: my job"),
        "name",
        "bad_format",
        "letters, digits, `-` and `_`",
        2,
    ),
    ("name-too-long", spec("").replace("name: probe", "name: " + "x" * 65), "name", "bad_format", "1 to 64", 2),
    ("missing-name", spec("").replace("name: probe\n", ""), "name", "missing", "required", 1),
    ("team-bad-format", spec("team: ml team\n"), "team", "bad_format", "letters, digits", 5),
    ("environment-unknown", spec("environment: staging\n"), "environment", "not_allowed", "'adhoc' or 'production'", 5),
    ("command-is-text", spec("command: python train.py\n"), "command", "wrong_type", "must be a list", 5),
    ("command-empty", spec("command: []\n"), "command", "too_short", "at least 1 item", 5),
    (
        "env-lowercase-name",
        spec("env: {data_dir: /x}\n"),
        "env.data_dir",
        "bad_format",
        "not an environment variable name",
        5,
    ),
    ("env-aws-batch", spec("env: {AWS_BATCH_JOB_ID: x}\n"), "env.AWS_BATCH_JOB_ID", "reserved_env", "set by Batch", 5),
    (
        "env-batchdrop",
        spec("env: {BATCHDROP_RUN_ID: x}\n"),
        "env.BATCHDROP_RUN_ID",
        "reserved_env",
        "set by batchdrop",
        5,
    ),
    (
        "env-container-credentials",
        spec("env: {AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: /v2/credentials/x}\n"),
        "env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "reserved_env",
        "set by the container runtime, which gives a job its role's credentials",
        5,
    ),
    (
        "env-container-token",
        spec("env: {AWS_CONTAINER_AUTHORIZATION_TOKEN: t}\n"),
        "env.AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "reserved_env",
        "set by the container runtime",
        5,
    ),
    (
        "env-ecs-agent",
        spec("env: {ECS_CONTAINER_METADATA_URI_V4: http://x}\n"),
        "env.ECS_CONTAINER_METADATA_URI_V4",
        "reserved_env",
        "set by the container runtime",
        5,
    ),
    ("env-number", spec("env: {SEED: 42}\n"), "env.SEED", "wrong_type", 'in quotes, e.g. "42"', 5),
    ("parameter-number", spec("parameters: {epochs: 10}\n"), "parameters.epochs", "wrong_type", "must be text", 5),
    (
        "parameter-bad-name",
        spec("parameters: {exp-file: x}\n"),
        "parameters.exp-file",
        "bad_format",
        "not a parameter name",
        5,
    ),
    (
        "vcpus-zero",
        spec("resources: {vcpus: 0, memory_mib: 4096}\n", resources=False),
        "resources.vcpus",
        "out_of_range",
        "greater than 0",
        4,
    ),
    (
        "vcpus-text",
        spec('resources: {vcpus: "8", memory_mib: 4096}\n', resources=False),
        "resources.vcpus",
        "wrong_type",
        "must be a number",
        4,
    ),
    (
        "memory-too-small",
        spec("resources: {vcpus: 1, memory_mib: 64}\n", resources=False),
        "resources.memory_mib",
        "out_of_range",
        "at least 128",
        4,
    ),
    (
        "memory-fraction",
        spec("resources: {vcpus: 1, memory_mib: 1024.5}\n", resources=False),
        "resources.memory_mib",
        "wrong_type",
        "whole number",
        4,
    ),
    (
        "gpus-negative",
        spec("resources: {vcpus: 1, memory_mib: 1024, gpus: -1}\n", resources=False),
        "resources.gpus",
        "out_of_range",
        "at least 0",
        4,
    ),
    (
        "vcpus-nan",
        spec("resources: {vcpus: .nan, memory_mib: 1024}\n", resources=False),
        "resources.vcpus",
        "wrong_type",
        "finite",
        4,
    ),
    ("timeout-zero", spec("timeout_minutes: 0\n"), "timeout_minutes", "out_of_range", "at least 1", 5),
    ("attempts-eleven", spec("retries: {attempts: 11}\n"), "retries.attempts", "out_of_range", "at most 10", 5),
    (
        "spot-without-attempts",
        spec("retries: {on_spot_interruption: true}\n"),
        "retries.attempts",
        "spot_needs_attempts",
        "attempts to 2 or more",
        5,
    ),
    (
        "spot-as-text",
        spec('retries: {attempts: 2, on_spot_interruption: "yes"}\n'),
        "retries.on_spot_interruption",
        "wrong_type",
        "true or false",
        5,
    ),
    ("array-of-one", spec("array_size: 1\n"), "array_size", "out_of_range", "at least 2", 5),
    ("array-too-big", spec("array_size: 10001\n"), "array_size", "out_of_range", "at most 10000", 5),
    (
        "sweep-too-big",
        spec(
            "command: [run]\nsweep:\n  a: ["
            + ",".join(f'"{i}"' for i in range(101))
            + "]\n  b: ["
            + ",".join(f'"{i}"' for i in range(100))
            + "]\n"
        ),
        "sweep",
        "sweep_size",
        "101 × 100 = 10,100 jobs",
        6,
    ),
    ("sweep-of-one", spec('command: [run]\nsweep: {lr: ["0.1"]}\n'), "sweep", "sweep_size", "= 1 jobs", 6),
    (
        "sweep-repeats",
        spec('command: [run]\nsweep: {lr: ["0.1", "0.1"]}\n'),
        "sweep.lr",
        "duplicate_value",
        "values repeat: 0.1",
        6,
    ),
    (
        "sweep-bad-axis",
        spec('command: [run]\nsweep: {LR: ["0.1", "0.2"]}\n'),
        "sweep.LR",
        "bad_format",
        "not a sweep name",
        6,
    ),
    (
        "sweep-and-array",
        spec('command: [run]\narray_size: 4\nsweep: {lr: ["0.1", "0.2"]}\n'),
        "sweep",
        "sweep_and_array",
        "either `sweep` or `array_size`",
        7,
    ),
    (
        "sweep-parameter-clash",
        spec('command: [run, Ref::lr]\nparameters: {lr: "1"}\nsweep: {lr: ["0.1", "0.2"]}\n'),
        "sweep.lr",
        "sweep_parameter_clash",
        "both swept and set in `parameters`",
        7,
    ),
    (
        "sweep-env-clash",
        spec('command: [run]\nenv: {SWEEP_LR: "1"}\nsweep: {lr: ["0.1", "0.2"]}\n'),
        "sweep.lr",
        "sweep_env_clash",
        "SWEEP_LR",
        7,
    ),
    ("priority-too-high", spec("priority: 10000\n"), "priority", "out_of_range", "at most 9999", 5),
    ("tag-bad-characters", spec("tags: {owner: 'me!'}\n"), "tags.owner", "bad_format", "may contain only", 5),
    ("tag-reserved", spec("tags: {'aws:cost': x}\n"), "tags.aws:cost", "reserved_tag", "reserved", 5),
    ("notify-unknown-status", spec("notify: {on: [finished]}\n"), "notify.on[0]", "not_allowed", "'submitted'", 5),
    ("image", spec("image: python:3.13\n"), "image", "forbidden_field", "fixed by the job definition", 5),
    ("job-role", spec("job_role_arn: x\n"), "job_role_arn", "forbidden_field", "IAM role", 5),
    (
        "privileged-step",
        spec("steps:\n  - name: a\n    privileged: true\n"),
        "steps[0].privileged",
        "forbidden_field",
        "privileged settings",
        7,
    ),
    (
        "iam-arn-in-env",
        spec("env: {ROLE: 'arn:aws:iam::123456789012:role/admin'}\n"),
        "env.ROLE",
        "iam_arn",
        "IAM ARNs are not allowed",
        5,
    ),
    (
        "iam-arn-hidden-by-an-escape",
        spec('env: {ROLE: "arn\\x3aaws:iam::123456789012:role/admin"}\n'),
        "env.ROLE",
        "iam_arn",
        "IAM ARNs are not allowed",
        5,
    ),
    (
        "job-definition-arn",
        spec("").replace(
            "job_definition: trainer", "job_definition: arn:aws:batch:us-east-1:123456789012:job-definition/x:1"
        ),
        "job_definition",
        "bad_format",
        "alias from the platform config",
        3,
    ),
    (
        "duplicate-step",
        spec("steps:\n  - name: a\n  - name: a\n"),
        "steps[1].name",
        "duplicate_step",
        "already used by steps[0]",
        7,
    ),
    (
        "unknown-dependency",
        spec("steps:\n  - name: a\n    depends_on: [b]\n"),
        "steps[0].depends_on[0]",
        "unknown_step",
        "no step `b`",
        7,
    ),
    (
        "self-dependency",
        spec("steps:\n  - name: a\n    depends_on: [a]\n"),
        "steps[0].depends_on[0]",
        "self_dependency",
        "cannot depend on itself",
        7,
    ),
    (
        "cycle",
        spec("steps:\n  - name: a\n    depends_on: [b]\n  - name: b\n    depends_on: [a]\n"),
        "steps[0].depends_on",
        "cycle",
        "a → b → a",
        7,
    ),
    (
        "too-many-dependencies",
        spec(
            "steps:\n"
            + "".join(f"  - name: s{i}\n" for i in range(21))
            + "  - name: last\n    depends_on: ["
            + ", ".join(f"s{i}" for i in range(21))
            + "]\n"
        ),
        "steps[21].depends_on",
        "too_many_dependencies",
        "at most 20",
        28,
    ),
    (
        "step-without-resources",
        spec("steps:\n  - name: a\n", resources=False),
        "steps[0].resources",
        "missing",
        "step `a` has no `resources`",
        5,
    ),
    (
        "step-without-definition",
        "version: 1\nname: probe\n" + RESOURCES + "steps:\n  - name: a\n",
        "steps[0].job_definition",
        "missing",
        "no `job_definition`",
        5,
    ),
    (
        "sweep-at-top-with-steps",
        spec('command: [x]\nsweep: {lr: ["1", "2"]}\nsteps:\n  - name: a\n'),
        "sweep",
        "misplaced",
        "on the step that needs it",
        6,
    ),
    ("no-steps", spec("steps: []\n"), "steps", "too_short", "at least 1 item", 5),
    ("duplicate-key", spec("name: again\n"), "name", "duplicate_key", "given twice", 5),
    ("python-tag", spec("command: !!python/object/apply:os.system [ls]\n"), "command", "yaml_tag", "is not allowed", 5),
]


@pytest.mark.parametrize(
    ("text", "path", "code", "words", "line"),
    [pytest.param(*case[1:], id=case[0]) for case in SHAPE_CASES],
)
def test_bad_spec_is_refused_with_field_line_and_words(text: str, path: str, code: str, words: str, line: int) -> None:
    problem = find(rejected(text), path, code)
    assert words in problem.message
    assert problem.line == line


def test_all_problems_are_reported_together() -> None:
    problems = rejected(spec("image: x\nenv: {SEED: 1}\nresources: {vcpus: 0, memory_mib: 1}\n", resources=False))
    assert {(p.path, p.code) for p in problems} >= {
        ("image", "forbidden_field"),
        ("env.SEED", "wrong_type"),
        ("resources.vcpus", "out_of_range"),
        ("resources.memory_mib", "out_of_range"),
    }
    assert not any(p.code == "unknown_field" and p.path == "image" for p in problems), "reported once, not twice"


FILE_CASES = [
    ("yaml-syntax", b"version: 1\nname: [unclosed\n", "spec.yaml", "yaml_syntax", "not valid YAML", 3),
    ("list-at-root", b"- version: 1\n", "spec.yaml", "not_a_mapping", "it is a list", None),
    ("empty", b"", "spec.yaml", "empty", "the file is empty", None),
    ("whitespace-only", b"  \n\t\n", "spec.yaml", "empty", "the file is empty", None),
    ("comments-only", b"# version: 1\n", "spec.yaml", "empty", "the file is empty", None),
    ("json-empty", b"", "spec.json", "empty", "the file is empty", None),
    ("json-whitespace-only", b"\r\n ", "spec.json", "empty", "the file is empty", None),
    ("null-document", b"null\n", "spec.yaml", "not_a_mapping", "it is nothing (null)", None),
    ("not-utf8", b"version: 1\nname: caf\xe9\n", "spec.yaml", "not_utf8", "not UTF-8", 2),
    ("too-large", b"version: 1\n#" + b"x" * (256 * 1024), "spec.yaml", "too_large", "at most 256 KiB", None),
    ("too-deep", b"version: 1\nenv: " + b"[" * 30 + b"]" * 30 + b"\n", "spec.yaml", "too_deep", "nested more than", 2),
    ("two-documents", b"version: 1\n---\nversion: 1\n", "spec.yaml", "yaml_syntax", "single document", 2),
    ("json-syntax", b'{"version": 1,\n "name": }', "spec.json", "json_syntax", "not valid JSON", 2),
    ("json-duplicate", b'{"version": 1, "version": 1}', "spec.json", "duplicate_key", "given twice", None),
    ("json-nan", b'{"version": 1, "resources": {"vcpus": NaN}}', "spec.json", "json_syntax", "NaN", None),
    ("json-too-deep", b'{"env": ' + b"[" * 2000 + b"]" * 2000 + b"}", "spec.json", "too_deep", "nested", None),
    ("wrong-extension", b"version: 1\n", "spec.txt", "file_type", ".yaml, .yml or .json", None),
]


@pytest.mark.parametrize(
    ("raw", "filename", "code", "words", "line"),
    [pytest.param(*case[1:], id=case[0]) for case in FILE_CASES],
)
def test_unreadable_file_is_refused_with_reason(
    raw: bytes, filename: str, code: str, words: str, line: int | None
) -> None:
    problems = rejected(raw, filename)
    assert [p.code for p in problems] == [code]
    assert words in problems[0].message
    assert problems[0].line == line


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    problems = rejected(bomb)
    assert problems[0].code == "too_many_values"
    assert "anchors and aliases" in problems[0].message


def test_unknown_field_lists_allowed_fields_when_nothing_is_close() -> None:
    problem = find(rejected(spec("zzzz: 1\n")), "zzzz", "unknown_field")
    assert "allowed here:" in problem.message
    assert "job_definition" in problem.message


ROUTING_CASES = [
    # (id, file text, team, path, code, words)
    (
        "memory-exceeds-queue",
        spec("resources: {vcpus: 8, memory_mib: 300000, gpus: 1}\n", resources=False),
        "vision",
        "resources.memory_mib",
        "exceeds_queue",
        "asks for 293 GiB (300,000 MiB) of memory; the largest instance of "
        "queue `gpu-shared` has 244 GiB (249,856 MiB)",
    ),
    (
        "gpus-exceed-queue",
        spec("resources: {vcpus: 8, memory_mib: 1024, gpus: 5}\n", resources=False),
        "vision",
        "resources.gpus",
        "exceeds_queue",
        "asks for 5 GPUs; the largest instance of queue `gpu-shared` has 4",
    ),
    (
        "vcpus-exceed-queue",
        spec("resources: {vcpus: 128, memory_mib: 1024}\n", resources=False),
        "vision",
        "resources.vcpus",
        "exceeds_queue",
        "asks for 128 vCPUs; the largest instance of queue `cpu-shared` has 96",
    ),
    ("unknown-team", spec(""), "robotics", "team", "unknown_team", "team `robotics` is not in the platform config"),
    (
        "folder-and-spec-disagree",
        spec("team: forecasting\n"),
        "vision",
        "team",
        "wrong_team",
        "belongs to team `vision` (its folder) but says team: forecasting",
    ),
    (
        "environment-not-allowed",
        spec("environment: production\n").replace("trainer", "triage"),
        "forecasting",
        "environment",
        "environment_not_allowed",
        "may not run `production` jobs",
    ),
    (
        "other-teams-alias",
        spec(""),
        "forecasting",
        "job_definition",
        "unknown_job_definition",
        "team `forecasting` has no job definition `trainer` (it has: triage)",
    ),
    (
        "request-too-large",
        spec("env:\n" + "".join(f"  VAR_{i}: '{'x' * 200}'\n" for i in range(160))),
        "vision",
        "",
        "batch_limit",
        "Batch accepts at most 30 KiB",
    ),
    (
        "too-many-tags",
        spec("tags: {" + ", ".join(f"t{i}: v" for i in range(47)) + "}\n"),
        "vision",
        "",
        "batch_limit",
        "51 tags with batchdrop's own; Batch accepts at most 50",
    ),
]


@pytest.mark.parametrize(
    ("text", "team", "path", "code", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in ROUTING_CASES],
)
def test_unroutable_spec_is_refused_with_advice(  # noqa: PLR0917  # one argument per column of the table
    text: str, team: str, path: str, code: str, words: str, platform_config: PlatformConfig
) -> None:
    with pytest.raises(SpecRejected) as caught:
        check_and_plan(text.encode(), "spec.yaml", team=team, config=platform_config, run_id="r" * 20)
    problem = find(caught.value.problems, path, code)
    assert words in problem.message
