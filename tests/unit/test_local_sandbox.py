"""The local runtime gives each function a process of its own, as Lambda does: two functions that log
through the same Powertools service, invoked at the same time, each label their own lines."""

from __future__ import annotations

import json
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from batchdrop_local.sandbox import FunctionError, Sandbox
from batchdrop_local.stack_model import LocalFunction

# Like the template's functions: one Powertools service for all, the Lambda context's keys appended
# per invocation, a layer logger under the service's name, a metric flushed per invocation.
HANDLER = textwrap.dedent(
    """
    import logging
    import os

    from aws_lambda_powertools import Logger, Metrics

    logger = Logger()
    metrics = Metrics()
    layer_logger = logging.getLogger("batchdrop.shared")


    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def lambda_handler(event, context):
        metrics.add_metric(name=os.environ["WHO"], unit="Count", value=1)
        for line in range(20):
            logger.info("handler line", extra={"who": os.environ["WHO"], "line": line})
            layer_logger.info("layer line")
        if event.get("fail"):
            raise ValueError("asked to fail")
        if event.get("die"):
            os._exit(1)
        return {"who": os.environ["WHO"], "got": event}
    """
)


def function(tmp_path: Path, name: str, code: str = HANDLER) -> LocalFunction:
    code_dir = tmp_path / name
    code_dir.mkdir()
    (code_dir / "app.py").write_text(code)
    environment = {"POWERTOOLS_SERVICE_NAME": "batchdrop", "POWERTOOLS_METRICS_NAMESPACE": "test", "WHO": name}
    return LocalFunction(
        logical_id=name, code_dir=code_dir, handler="app.lambda_handler", timeout=3, environment=environment, events={}
    )


def test_functions_invoked_at_once_each_label_their_own_lines(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sandboxes = [Sandbox(function(tmp_path, name)).start() for name in ("AlphaFunction", "BetaFunction")]
    try:
        for sandbox in sandboxes:
            sandbox.ready()
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda index: sandboxes[index % 2].invoke({"n": index}), range(24)))
    finally:
        for sandbox in sandboxes:
            sandbox.stop()

    assert [reply["who"] for reply in replies] == ["AlphaFunction", "BetaFunction"] * 12
    assert [reply["got"] for reply in replies] == [{"n": index} for index in range(24)]
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    logged = [line for line in lines if "_aws" not in line]
    assert len(logged) == 24 * 40, "every line, whole"
    for line in logged:
        if line["message"] == "handler line":
            assert line["function_name"] == line["who"]
    by_function = {
        name: [line for line in logged if line["function_name"] == name] for name in ("AlphaFunction", "BetaFunction")
    }
    assert all(len(lines) == 12 * 40 for lines in by_function.values()), "the layer's lines too"
    metrics = [line for line in lines if "_aws" in line]
    assert len(metrics) == 24
    assert all(len(line["_aws"]["CloudWatchMetrics"][0]["Metrics"]) == 1 for line in metrics), "no metric of another"


def test_a_function_that_raises_is_an_error_of_its_type_and_the_process_goes_on(tmp_path: Path) -> None:
    sandbox = Sandbox(function(tmp_path, "AlphaFunction")).start().ready()
    try:
        with pytest.raises(FunctionError, match="ValueError: asked to fail") as raised:
            sandbox.invoke({"fail": True})
        assert raised.value.error_type == "ValueError"
        assert sandbox.invoke({"n": 1})["got"] == {"n": 1}
    finally:
        sandbox.stop()


def test_a_function_whose_process_dies_fails_that_invocation_and_the_next_gets_a_new_process(tmp_path: Path) -> None:
    sandbox = Sandbox(function(tmp_path, "AlphaFunction")).start().ready()
    try:
        with pytest.raises(FunctionError, match=r"AlphaFunction: Runtime\.ExitError"):
            sandbox.invoke({"die": True})
        assert sandbox.invoke({"n": 2})["got"] == {"n": 2}
    finally:
        sandbox.stop()


def test_a_function_that_cannot_be_imported_says_so_when_it_starts(tmp_path: Path) -> None:
    broken = Sandbox(function(tmp_path, "BrokenFunction", "import no_such_module\n")).start()
    try:
        with pytest.raises(FunctionError, match="BrokenFunction: ModuleNotFoundError"):
            broken.ready()
    finally:
        broken.stop()
