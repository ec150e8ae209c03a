"""`chatrelay workers`: the live workers from the registry their heartbeats keep (`contract.workers`)."""

import argparse
from datetime import UTC, datetime

from cli.connection import Ops, run
from cli.output import ago, print_json, seconds, table
from contract.workers import WorkerRegistry


def add_parsers(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser("workers", parents=[common], help="live workers: host, pid, uptime, jobs")
    p.set_defaults(run=lambda args: run(lambda ops: _workers(ops, args)))


async def _workers(ops: Ops, args: argparse.Namespace) -> int:
    workers = await WorkerRegistry(ops.redis, ops.keys).live()
    if args.json:
        print_json({"workers": workers})
        return 0
    if not workers:
        print("no live workers")
        return 0
    now = datetime.now(UTC)
    rows = [
        [
            w.id,
            w.host,
            str(w.pid),
            seconds((now - w.started_at).total_seconds()),
            ago(w.last_heartbeat_at, now),
            str(w.jobs_running) + (f"/{w.max_jobs}" if w.max_jobs else ""),
            str(w.jobs_done),
        ]
        for w in workers
    ]
    print(table(["ID", "HOST", "PID", "UP", "HEARTBEAT", "RUNNING", "DONE"], rows))
    return 0
