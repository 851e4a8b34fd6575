"""Running the template's functions in this process, as Lambda would run them."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from batchdrop_local.stack_model import REGION, LocalFunction


@dataclass(frozen=True)
class FakeLambdaContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = "local"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(function: LocalFunction) -> ModuleType:
    """Import the function's module with its environment set, as a cold start does."""
    os.environ.update(function.environment)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", function.logical_id)
    os.environ.setdefault("AWS_REGION", REGION)
    module_file, _, _ = function.handler.rpartition(".")
    path = function.code_dir / f"{module_file}.py"
    name = f"batchdrop_function_{function.logical_id}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def invoke(function: LocalFunction, module: ModuleType, event: dict[str, Any]) -> Any:
    handler_name = function.handler.rpartition(".")[2]
    context = FakeLambdaContext(
        function_name=function.logical_id,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{function.logical_id}",
    )
    return getattr(module, handler_name)(event, context)
