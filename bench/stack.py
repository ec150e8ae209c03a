"""The processes under test, started with `cli.processes` exactly as `make dev` and the tests start them:
redis-server, the demo upstream, the naive app, the peer (`bench.peer`), one chatrelay API process and its
worker(s)."""

import os
import resource
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.peer import start_peer
from cli.processes import ProcessGroup, free_port, wait_for_http
from contract.keys import Keys

# The per-owner limits and the queue depth cap (issue 4) guard a shared service; the load client is one owner.
GENEROUS = "1000000"
# Chats come from this many owners (API keys) in turn, so that no owner holds hundreds of streams at once: the
# per-owner bookkeeping then costs what it would with many users, not what one user with all of them would.
OWNERS = 200
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it); returns the new one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return int(target)
    return int(soft)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command name: state is field 3, utime 14, stime 15 (1-based, proc(5)).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


@dataclass
class Stack:
    group: ProcessGroup
    redis_url: str
    demo_url: str  # without /v1
    naive_url: str
    api_url: str
    keys: Keys
    peer_url: str
    workers: int
    api_keys: list[str]
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        """Headers for the probes' requests to the chatrelay API: the first owner's key."""
        return {"Authorization": f"Bearer {self.api_keys[0]}"}

    def owners(self) -> list[dict[str, str]]:
        """One header set per owner: the load spreads its chats over them, as many users' chats would be."""
        return [{"Authorization": f"Bearer {key}"} for key in self.api_keys]

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        self.group.stop_all()


def start_stack(workers: int = 1, upstream_delay_ms: float = 33.3) -> Stack:
    group = ProcessGroup()
    try:
        redis_port = free_port()
        redis_url = group.start_redis(redis_port)
        demo_v1 = group.start_demo(free_port(), delay_ms=upstream_delay_ms, ttft_ms=0)
        prefix = "bench-" + secrets.token_hex(4)
        api_keys = ["bench-" + secrets.token_urlsafe(24) for _ in range(OWNERS)]
        group.env.update(
            REDIS_URL=redis_url,
            CHATRELAY_KEY_PREFIX=prefix,
            OPENAI_BASE_URL=demo_v1,
            OPENAI_API_KEY="sk-bench-" + secrets.token_hex(8),
            OPENAI_MODEL="chatrelay-demo",
            CHATRELAY_API_KEYS=",".join(f"bench{i}:{key}" for i, key in enumerate(api_keys)),
            CHATRELAY_SECRET_KEY=secrets.token_urlsafe(32),
            CHATRELAY_WORKER_METRICS_PORT="0",  # several stacks may share the machine
            # Warnings only, as the naive app runs (uvicorn --log-level warning): log lines are not the subject.
            CHATRELAY_LOG_LEVEL="WARNING",
            CHATRELAY_MAX_CONCURRENT_JOBS="5000",
            CHATRELAY_MAX_ACTIVE_STREAMS_PER_OWNER=GENEROUS,
            CHATRELAY_MAX_SSE_CONNECTIONS_PER_OWNER=GENEROUS,
            CHATRELAY_MAX_QUEUE_DEPTH=GENEROUS,
            CHATRELAY_DEMO_UPSTREAM="false",
        )
        for i in range(workers):
            group.start_worker(f"worker-{i + 1}")
        api_port = free_port()
        api_url = group.start_api(api_port, "api")
        naive_port = free_port()
        naive = group.spawn(
            "naive",
            [
                *(sys.executable, "-m", "uvicorn", "bench.naive:app", "--host", "127.0.0.1", "--port", str(naive_port)),
                *("--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "3"),
            ],
        )
        naive_url = f"http://127.0.0.1:{naive_port}"
        wait_for_http(f"{naive_url}/healthz", proc=naive)
        # The peer's keys under the same prefix (the library adds `:rs`), in the same Redis.
        peer_url = start_peer(group, free_port(), redis_url, demo_v1, prefix)
    except BaseException:
        group.stop_all()
        raise
    pids = {name: proc.pid for name, proc in group.procs.items()}
    pids["redis"] = pids.pop(f"redis-{redis_port}")
    return Stack(
        group,
        redis_url,
        demo_v1.removesuffix("/v1"),
        naive_url,
        api_url,
        Keys(prefix),
        peer_url,
        workers,
        api_keys,
        pids,
    )
