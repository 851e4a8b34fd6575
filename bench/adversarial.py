"""Spec files built to make deciding them expensive, each within the size limit (issue 11, defect 5).

`tests/unit/test_bounded_work.py` checks what batchdrop says of each (a capped problem list, every message
short); `bench.core` times the worst of them against the one-second budget. Each builder returns the
file's name and bytes; none is committed, since most are hundreds of KiB of the same few lines.
"""

from __future__ import annotations

from collections.abc import Callable

from batchdrop.errors import Problem, SpecRejected
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.planning import plan_run
from batchdrop.spec.documents import MAX_DOCUMENT_BYTES
from batchdrop.spec.parse import parse_spec

HEADER = "version: 1\nname: adversarial\njob_definition: trainer\nresources: {vcpus: 2, memory_mib: 4096}\n"


def fill(header: str, line: Callable[[int], str], footer: str = "") -> str:
    """`header`, then `line(0)`, `line(1)`... for as long as the file stays within the size limit."""
    lines = [header]
    size = len(header.encode()) + len(footer.encode())
    index = 0
    while size + len(next_line := line(index).encode()) <= MAX_DOCUMENT_BYTES:
        lines.append(next_line.decode())
        size += len(next_line)
        index += 1
    return "".join(lines) + footer


def top_level_sweep_over_50_steps() -> tuple[str, bytes]:
    """As observed (~100 s): a 10,000-value sweep at the top, where it is misplaced, and 50 steps."""
    values = ", ".join(f'"{index % 5000}"' for index in range(10_000))  # every value twice
    steps = "".join(f"  - name: step{index}\n    command: [python, run.py]\n" for index in range(50))
    return (
        "sweep-over-steps.yaml",
        f"{HEADER}command: [python, t.py]\nsweep:\n  lr: [{values}]\nsteps:\n{steps}".encode(),
    )


def unknown_top_level_keys() -> tuple[str, bytes]:
    """As observed (~43 s): 27,000 unknown top-level keys, each close to no field."""
    return "unknown-keys.yaml", fill(HEADER, lambda index: f"k{index}: 1\n").encode()


def steps_with_huge_sweeps() -> tuple[str, bytes]:
    """Steps each with a 10,000-value sweep whose values all repeat, as many steps as fit."""
    values = "[" + ", ".join(f'"{index % 100}"' for index in range(10_000)) + "]"
    step = "  - name: s{0}\n    command: [python, run.py]\n    sweep: {{lr: " + values + "}}\n"
    return "huge-sweeps.yaml", fill(f"{HEADER}steps:\n", step.format).encode()


def one_huge_value() -> tuple[str, bytes]:
    """A 200 KB value where a short literal belongs: the message must not echo it whole."""
    return "huge-value.yaml", f"{HEADER}environment: {'x' * 200_000}\n".encode()


def one_huge_key() -> tuple[str, bytes]:
    """A 200 KB unknown key (JSON: YAML caps plain keys at 1,024 characters itself)."""
    return "huge-key.json", ('{"version": 1, "name": "a", "' + "k" * 200_000 + '": 1}').encode()


def deeply_nested() -> tuple[str, bytes]:
    """Lists nested as deep as the file allows."""
    depth = (MAX_DOCUMENT_BYTES - 100) // 2
    return "deep.json", ('{"version": 1, "env": ' + "[" * depth + "]" * depth + "}").encode()


def many_bad_env_names() -> tuple[str, bytes]:
    """Environment variables, as many as fit, every name invalid."""
    return "env-names.yaml", fill(f"{HEADER}env:\n", lambda index: f"  bad-{index}: x\n").encode()


def env_merged_over_its_limit() -> tuple[str, bytes]:
    """200 variables at the top and 200 others in a step: each within the limit, together over it."""
    top = "".join(f"  TOP_{index}: x\n" for index in range(200))
    own = "".join(f"      OWN_{index}: x\n" for index in range(200))
    steps = f"steps:\n  - name: a\n    command: [run]\n    env:\n{own}"
    return "env-merge.yaml", f"{HEADER}env:\n{top}{steps}".encode()


def duplicate_keys() -> tuple[str, bytes]:
    """The same key over and over in one mapping."""
    return "duplicate-keys.yaml", fill(f"{HEADER}tags:\n", lambda _: "  a: b\n").encode()


def many_steps_with_bad_names() -> tuple[str, bytes]:
    """Far more steps than allowed, each with a forbidden field, a bad name and unknown dependencies."""
    step = "  - {{name: 'bad name {0}', image: x, depends_on: [nowhere, never]}}\n"
    return "bad-steps.yaml", fill(f"{HEADER}steps:\n", step.format).encode()


def a_number_of_5000_digits() -> tuple[str, bytes]:
    """More digits than Python turns into an int by default."""
    return "big-number.yaml", f"{HEADER}priority: {'9' * 5000}\n".encode()


ADVERSARIAL_SPECS: dict[str, Callable[[], tuple[str, bytes]]] = {
    builder.__name__: builder
    for builder in (
        top_level_sweep_over_50_steps,
        unknown_top_level_keys,
        steps_with_huge_sweeps,
        one_huge_value,
        one_huge_key,
        deeply_nested,
        many_bad_env_names,
        env_merged_over_its_limit,
        duplicate_keys,
        many_steps_with_bad_names,
        a_number_of_5000_digits,
    )
}


def decide(raw: bytes, filename: str, config: PlatformConfig) -> list[Problem]:
    """What the submit function decides of a file (`Submitter._submit_claimed`): its problems, [] if accepted."""
    try:
        plan_run(parse_spec(raw, filename), team="vision", config=config, run_id="a" * 20)
    except SpecRejected as rejected:
        return rejected.problems
    return []
