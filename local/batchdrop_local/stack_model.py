"""What the local stack is made of: its functions and the resources created for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchdrop_local.template import Resolver

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account
STACK_NAME = "batchdrop-local"


@dataclass
class LocalFunction:
    """A function of the template: its code, handler, environment and event sources."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]


@dataclass
class Stack:
    resolver: Resolver
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> Any:
        return self.resolver.refs[logical_id]

    def attribute(self, logical_id: str, name: str) -> Any:
        return self.resolver.attributes[(logical_id, name)]
