"""`chatrelay`: the command line."""

import argparse
import sys

from cli import dev


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatrelay", description="chatrelay: resumable LLM chat streams")
    subparsers = parser.add_subparsers(required=True, metavar="COMMAND")
    dev.add_parser(subparsers)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
