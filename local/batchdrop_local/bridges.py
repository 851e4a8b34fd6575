"""Where the emulator (moto, on plain HTTP, without Docker) is not AWS, and what stands in.

Each bridge is named, says what differs, and is the only place that knows it.
Handler code is never special-cased for local runs: the bridges change what
the emulator does around the functions, never what the functions do.
"""

from __future__ import annotations

from typing import Any


def without_tls_only_statements(policy: dict[str, Any]) -> dict[str, Any]:
    """TLS-ONLY BUCKET POLICY. The template denies every request to the jobs bucket that is not
    over TLS (`aws:SecureTransport: false`). moto enforces bucket policies, and the emulator
    listens on plain HTTP on loopback, so locally that statement would deny everything; it is
    left out of the local bucket policy. Every other statement stays.
    """
    statements = [
        statement
        for statement in policy.get("Statement", [])
        if statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") != "false"
    ]
    return {**policy, "Statement": statements}
