"""The demo's options: a spec it does not have is a usage error before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchdrop_local.demo import main


def test_an_unknown_only_is_a_usage_error_naming_the_demos_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--only", "nope.yaml", "--only", "typo-in-gpus.yaml", "--log", str(tmp_path / "demo.log")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "no such demo spec: nope.yaml" in err
    assert "typo-in-gpus.yaml" in err, "the demo's specs are listed"
    assert not (tmp_path / "demo.log").exists(), "nothing started"
