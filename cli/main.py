"""`chatrelay`: the command line."""

import argparse
import sys

from cli import dev
from cli.commands import stats, streams, tail, workers
from contract.ids import is_stream_id


def _ids_last(argv: list[str]) -> list[str]:
    """Stream ids are URL-safe base64 and may start with `-`, which argparse takes for an option: such an id
    goes after `--` (every command that takes an id takes exactly one)."""
    if argv[:1] in (["show"], ["tail"], ["cancel"]) and "--" not in argv:
        ids = [arg for arg in argv[1:] if arg.startswith("-") and is_stream_id(arg)]
        if len(ids) == 1:
            return [arg for arg in argv if arg != ids[0]] + ["--", ids[0]]
    return argv


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
    args = parser.parse_args(_ids_last(sys.argv[1:] if argv is None else argv))
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
