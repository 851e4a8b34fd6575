"""`python -m batchdrop_local.serve`: the embedded AWS in a process of its own.

Prints its endpoint on the first line of standard output and serves until
standard input closes (so it never outlives the process that started it).
"""

from __future__ import annotations

import sys

from batchdrop_local.emulator import EmbeddedAws


def main() -> None:
    aws = EmbeddedAws().start()
    print(aws.endpoint, flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes our stdin or exits
    finally:
        aws.stop()


if __name__ == "__main__":
    main()
