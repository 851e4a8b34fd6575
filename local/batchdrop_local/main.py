"""`batchdrop-local`: the local stack's commands.

batchdrop-local demo [--keep] [--speed 2] [--only FILE]   the whole control plane, live (`make demo`)
batchdrop-local slack [--follow] [--json]                 the Slack messages the last demo sent
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from batchdrop_local import demo
from batchdrop_local.slack_journal import SLACK_JOURNAL, follow_lines, print_messages, read_lines


def slack(journal: Path, *, follow: bool, raw: bool) -> int:
    """The Slack messages the demo sent (every one, kept in .batchdrop/slack.jsonl), oldest first:
    each as its time (UTC), channel and text; with --json as kept (time, channel, text, blocks);
    with --follow, new ones as a demo (make demo ARGS=--keep) sends them."""
    if follow:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops following
            print_messages(follow_lines(journal), sys.stdout, sys.stderr, raw=raw)
        return 0
    if not journal.is_file():
        print(
            f"batchdrop-local slack: no Slack messages yet: {journal} does not exist (run `make demo` first)",
            file=sys.stderr,
        )
        return 1
    printed = print_messages(read_lines(journal), sys.stdout, sys.stderr, raw=raw)
    if not printed and not raw:
        print(f"(no Slack messages in {journal})", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchdrop-local", description="batchdrop's local stack")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # the demo's own options are its parser's (`batchdrop-local demo --help`)
    commands.add_parser("demo", help="the whole control plane on an embedded AWS, live", add_help=False)
    messages = commands.add_parser(
        "slack", help="the Slack messages the demo sent, oldest first", description=slack.__doc__
    )
    messages.add_argument("--follow", "-f", action="store_true", help="keep printing new messages (Ctrl-C stops)")
    messages.add_argument(
        "--json", action="store_true", help="each message as its JSON line: time, channel, text, blocks"
    )
    messages.add_argument(
        "--file", type=Path, default=SLACK_JOURNAL, help="the journal to read (default: .batchdrop/slack.jsonl)"
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        return demo.main(rest, prog="batchdrop-local demo")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return slack(args.file, follow=args.follow, raw=args.json)
    except BrokenPipeError:  # its reader stopped reading (`| head`): what it wanted was printed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush goes nowhere
        return 0


if __name__ == "__main__":
    sys.exit(main())
