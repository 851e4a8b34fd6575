"""Reading a spec file: its bytes to a validated spec and the jobs it resolves to, or every problem."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pydantic import ValidationError

from batchdrop.errors import InvalidInput, Problem, SpecRejected, render_loc
from batchdrop.spec.documents import Document, format_for, load_document
from batchdrop.spec.explain import problems_from_validation_error
from batchdrop.spec.model import JobDraft, JobSpec
from batchdrop.spec.rules import IAM_ARN_BYTES, check_spec, forbidden_findings, in_dependency_order, resolve_jobs


@dataclass(frozen=True)
class ParsedSpec:
    spec: JobSpec
    document: Document
    jobs: tuple[JobDraft, ...]
    """In dependency order: every job comes after the jobs it depends on."""


def parse_spec(raw: bytes, filename: str) -> ParsedSpec:
    """Read, validate and resolve a spec file; raise `SpecRejected` with every problem."""
    document_format = format_for(filename)
    if document_format is None:
        raise SpecRejected([Problem(path="", code="file_type", message="a spec file must end in .yaml, .yml or .json")])
    try:
        document = load_document(raw, document_format)
    except InvalidInput as exc:
        raise SpecRejected(exc.problems) from exc
    try:
        spec = JobSpec.model_validate(document.data)
    except ValidationError as exc:
        # Forbidden fields fail validation as unknown ones; say why they are forbidden instead.
        findings = forbidden_findings(document.data)
        flagged = {render_loc(loc) for loc, _, _ in findings}
        explained = (
            problem
            for problem in problems_from_validation_error(exc, document, JobSpec)
            if not (problem.code == "unknown_field" and problem.path in flagged)
        )
        raise SpecRejected(itertools.chain(document.problems(findings), explained)) from exc
    drafts = resolve_jobs(spec)
    # Without escapes, every text of the spec is a substring of the file: one search rules IAM ARNs out.
    may_hold_arn = b"\\" in raw or IAM_ARN_BYTES.search(raw) is not None
    findings = check_spec(spec, drafts, scan_text=may_hold_arn)
    if findings:
        raise SpecRejected(document.problems(findings))
    return ParsedSpec(spec=spec, document=document, jobs=tuple(in_dependency_order(drafts)))
