"""`chatrelay stats`: queue depth, what runs, how answers ended lately, time to first token."""

import argparse

from cli.connection import Ops, run
from cli.output import parse_duration, print_json, seconds
from contract.stats import Percentiles, collect
from contract.workers import WorkerRegistry


def add_parsers(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser("stats", parents=[common], help="queue depth, running, ended in the last hour, TTFT")
    p.add_argument(
        "--window", type=parse_duration, default=3600.0, metavar="DURATION", help="how far back (default 1h)"
    )
    p.set_defaults(run=lambda args: run(lambda ops: _stats(ops, args)))


def _ms(value: float | None) -> str:
    return "-" if value is None else seconds(value / 1000)


def _ttft(p: Percentiles) -> str:
    if not p.count:
        return "no samples"
    return f"p50 {_ms(p.p50)}  p90 {_ms(p.p90)}  p99 {_ms(p.p99)}  max {_ms(p.max)}  (n={p.count})"


async def _stats(ops: Ops, args: argparse.Namespace) -> int:
    s = ops.settings
    lookback = s.generation_timeout_seconds * s.max_attempts
    stats = await collect(ops.redis, ops.keys, args.window, lookback)
    workers = len(await WorkerRegistry(ops.redis, ops.keys).live())
    if args.json:
        print_json({**stats.model_dump(mode="json"), "workers": workers})
        return 0
    window = seconds(args.window)
    codes = ", ".join(f"{code} {n}" for code, n in stats.errors_by_code.items()) or "-"
    lines = [
        ("queue depth", str(stats.queue_depth)),
        ("queued", str(stats.queued)),
        ("running", str(stats.running)),
        ("workers", str(workers)),
        (f"ended, last {window}", f"done {stats.done}  error {stats.error}  cancelled {stats.cancelled}"),
        ("errors by code", codes),
        ("time to first token", _ttft(stats.ttft_ms)),
    ]
    width = max(len(name) for name, _ in lines)
    print("\n".join(f"{name.ljust(width)}  {value}" for name, value in lines))
    return 0
