"""`python -m bench` (the full run, about 5 minutes) or `python -m bench --quick` (about 70 s, under 2 minutes)."""

import argparse
import sys
import time
from pathlib import Path

from bench import report
from bench.run import FULL, QUICK, main

RESULTS = Path(__file__).resolve().parent / "results"


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (the CI smoke test), written as quick.*")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the results (default bench/results)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[bench {time.monotonic() - started:6.1f}s] {message}", flush=True)

    result = main(plan, log)
    paths = report.write(result, args.out, "quick" if args.quick else "latest")
    print(report.markdown(result))
    log("wrote " + ", ".join(str(p) for p in paths))
    if result["void"]:
        log("VOID: an answer differed from what the upstream sent; these figures do not count")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
