"""`chatrelay`: the command line."""

import argparse
import sys

from cli import dev
from cli.commands import stats, streams, tail, workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatrelay", description="chatrelay: resumable LLM chat streams")
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    dev.add_parser(subparsers)
    # The operating commands read Redis directly (REDIS_URL, CHATRELAY_KEY_PREFIX): no API needed.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON instead of a table")
    streams.add_parsers(subparsers, common)
    tail.add_parsers(subparsers, common)
    workers.add_parsers(subparsers, common)
    stats.add_parsers(subparsers, common)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
