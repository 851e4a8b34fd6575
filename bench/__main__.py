"""`python -m bench [name...]`: run the benchmarks and print their figures against targets."""

from __future__ import annotations

import importlib
import sys

from bench.report import Figure

BENCHMARKS = {"core": "bench.core", "submit": "bench.submit", "track": "bench.track", "recovery": "bench.recovery"}
BENCHMARKS["burst"] = "bench.burst"  # thousands of drops at once against a shared SubmitJob limit (issue 17)
BENCHMARKS["coldstart"] = "bench.coldstart"  # the submit function's cold start (issue 17)


def main(names: list[str]) -> int:
    chosen = [name for name in names if not name.startswith("--")] or list(BENCHMARKS)  # --full: bench.burst
    for name in chosen:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"\n{name}: {(module.__doc__ or '').strip().splitlines()[0]}")
        figures: list[Figure] = module.run()
        for figure in figures:
            print(figure.line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
