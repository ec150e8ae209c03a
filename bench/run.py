"""The whole benchmark, one phase after another on one stack: the K sweep for the three designs (chatrelay, the
naive app, the peer `resumable-stream`; K=100 is the headline point), then a 1,000-token answer (Redis memory,
resume cost, reconnect storm), then idle connections.

The designs run at each K back to back, so a change in the machine's background load hits them alike.
"""

import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from bench import peer, peer_probes, probes
from bench.client import HttpClient
from bench.load import CHATRELAY, DESIGNS, NAIVE, PEER, SERVED_BY_CHATRELAY, SURFACES, LoadResult, run_load
from bench.stack import Stack, cpu_seconds, raise_fd_limit, start_stack
from contract.redis_client import connect

HEADLINE_K = 100
P99_LIMIT_MS = 50.0


@dataclass(frozen=True)
class Plan:
    """How much of each phase to run."""

    name: str
    ks: tuple[int, ...]
    point_seconds: float  # arrivals last this long at each K
    sweep_budget_s: float  # no new K once the sweep has run this long
    tokens: int  # per chat in the load (at 30 tokens/s)
    answer_tokens: int  # the finished answer for memory and resume
    resume_reps: int
    storm_clients: int
    idle_chatrelay: int
    idle_naive: int
    relay_tokens: int  # per chat in the steady-streaming CPU probe (100 chats)
    relay_window_s: float
    ks_below: tuple[int, ...] = ()  # tried downward when a design fails at the first K


FULL = Plan(
    "full",
    (50, 60, 70, 80, 90, 100, 150, 200, 250, 300, 400, 600),
    14.0,
    640.0,  # three designs a K
    90,
    1000,
    30,
    1000,
    10_000,
    1000,
    300,
    6.0,
    (35, 20, 10),
)
QUICK = Plan("quick", (50, 100), 5.0, 30.0, 45, 1000, 5, 200, 500, 100, 150, 2.0)

DELAY_MS = 1000 / 30  # 30 tokens/s per chat
TTFT_MS = 100.0


def _cpu_us_per_token(before: dict[str, float], after: dict[str, float], tokens: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) * 1e6 / max(1, tokens), 1) for name in after}


async def _point(
    stack: Stack, redis: Any, design: str, k: int, plan: Plan, seed: int, scene: str = "text"
) -> tuple[LoadResult, dict[str, Any]]:
    pids = dict(stack.pids, load=os.getpid())
    servers = {
        NAIVE: {"naive"},
        PEER: {"peer", "redis"},
        CHATRELAY: {"api", "redis"} | {n for n in pids if n.startswith("worker")},
    }
    relevant = {"demo", "load"} | servers.get(design, servers[CHATRELAY])
    before_cmds = await probes.commandstats(redis)
    before = {n: cpu_seconds(p) for n, p in pids.items() if n in relevant}
    owners = stack.owners() if design in SERVED_BY_CHATRELAY else None
    url = {NAIVE: stack.naive_url, PEER: stack.peer_url}.get(design, stack.api_url)
    result = await run_load(
        design, url, stack.demo_url, k, plan.tokens, DELAY_MS, plan.point_seconds, seed,
        redis=redis, keys=stack.keys, ttft_ms=TTFT_MS, owners=owners,
        scene=scene,
    )  # fmt: skip
    after = {n: cpu_seconds(p) for n, p in pids.items() if n in relevant}
    cmds = probes.commands_delta(before_cmds, await probes.commandstats(redis))
    if design == PEER:
        cmds = {name: calls for name, calls in cmds.items() if name in peer.COMMANDS}
    extra: dict[str, Any] = {"cpu_us_per_token": _cpu_us_per_token(before, after, result.tokens)}
    if design != NAIVE:
        done = max(1, result.chats - result.errors)
        extra["redis_commands"] = {
            "total": sum(cmds.values()),
            "per_chat": round(sum(cmds.values()) / done, 1),
            "per_token": round(sum(cmds.values()) / max(1, result.tokens), 2),
            "by_command_per_chat": {name: round(calls / done, 2) for name, calls in cmds.items()},
        }
    return result, extra


def _passes(result: LoadResult) -> bool:
    p99 = result.latency_ms.get("p99")
    return not result.void and result.errors == 0 and p99 is not None and p99 <= P99_LIMIT_MS


async def sweep(stack: Stack, redis: Any, plan: Plan, log: Any) -> dict[str, Any]:
    points: dict[str, list[dict[str, Any]]] = {design: [] for design in DESIGNS}
    failed: set[str] = set()
    started = time.monotonic()

    async def measure(design: str, k: int, seed: int) -> bool:
        result, extra = await _point(stack, redis, design, k, plan, seed)
        point = result.summary() | extra | {"passes": _passes(result)}
        points[design].append(point)
        lat = result.latency_ms
        log(
            f"{design:9} K={k:4} mean open {result.mean_concurrency:6.1f}  added p50 {lat.get('p50')} "
            f"p99 {lat.get('p99')} max {lat.get('max')} ms  chats {result.chats} errors {result.errors} "
            f"resets {result.resets} mismatches {result.mismatches}  cpu µs/token {extra['cpu_us_per_token']}"
        )
        return bool(point["passes"])

    for i, k in enumerate(plan.ks):
        if time.monotonic() - started > plan.sweep_budget_s and k > HEADLINE_K:
            log(f"sweep: time budget spent before K={k}")
            break
        for design in DESIGNS:
            if design in failed and k > HEADLINE_K:  # the headline K runs for every design regardless
                continue
            if not await measure(design, k, seed=1000 + i):
                failed.add(design)
        if failed == set(DESIGNS) and k >= HEADLINE_K:
            break
    # A design that fails already at the first K: look below it, so the figure says how far below.
    for design in DESIGNS:
        if not any(p["passes"] for p in points[design]):
            for k in plan.ks_below:
                if await measure(design, k, seed=2000 + k):
                    break
    largest: dict[str, Any] = {}
    for design, pts in points.items():
        passing = [p["target_concurrency"] for p in pts if p["passes"]]
        failing = [p["target_concurrency"] for p in pts if not p["passes"]]
        largest[design] = {
            "largest_k": max(passing, default=0),
            "first_failing_k": min((k for k in failing if k > max(passing, default=0)), default=None),
            "tried": sorted(p["target_concurrency"] for p in pts),
        }
    for pts in points.values():
        pts.sort(key=lambda p: int(p["target_concurrency"]))
    return {"points": points, "largest_k": largest, "seconds": round(time.monotonic() - started, 1)}


async def run(plan: Plan, log: Any) -> dict[str, Any]:
    fd_limit = raise_fd_limit()
    started = time.monotonic()
    stack = start_stack()
    log(f"stack up: api {stack.api_url}, naive {stack.naive_url}, demo {stack.demo_url}, logs in {stack.group.log_dir}")
    redis = connect(stack.redis_url)
    client = HttpClient(stack.api_url, stack.auth)
    try:
        # Warm the designs up (imports, connection pools, the JIT) before anything is measured.
        for design, url in ((NAIVE, stack.naive_url), (PEER, stack.peer_url), (CHATRELAY, stack.api_url)):
            await run_load(
                design, url, stack.demo_url, 20, 20, DELAY_MS, 2.0, 1, redis, stack.keys, TTFT_MS, stack.owners()
            )
        swept = await sweep(stack, redis, plan, log)
        log(f"sweep done in {swept['seconds']} s; largest K: {swept['largest_k']}")

        # At K=100 again, back to back so the machine's background hits them alike: the native SSE, the
        # reasoning-heavy profile (half of every answer streams as reasoning events) and the other framings of
        # the same stored stream (OpenAI Responses, the AI SDK's UI message stream); each is reported against
        # the native point just before it.
        native_result, native_extra = await _point(stack, redis, CHATRELAY, HEADLINE_K, plan, 3000)
        native = native_result.summary() | native_extra
        log(f"native again K={HEADLINE_K}: added {native_result.latency_ms}, cpu {native_extra}")
        reasoning_result, reasoning_extra = await _point(stack, redis, CHATRELAY, HEADLINE_K, plan, 3001, "reasoning")
        reasoning = reasoning_result.summary() | reasoning_extra
        log(f"reasoning profile K={HEADLINE_K}: added {reasoning_result.latency_ms}, cpu {reasoning_extra}")
        surfaces: dict[str, dict[str, Any]] = {}
        for i, surface in enumerate(SURFACES):
            surface_result, surface_extra = await _point(stack, redis, surface, HEADLINE_K, plan, 4000 + i)
            surfaces[surface] = {"load": surface_result.summary() | surface_extra}
            log(f"{surface} K={HEADLINE_K}: added {surface_result.latency_ms}, cpu {surface_extra}")

        # Steady streaming, every design and surface back to back.
        relay = {
            d: await probes.relay_cpu(stack, d, HEADLINE_K, plan.relay_tokens, plan.relay_window_s) for d in DESIGNS
        }
        log(f"steady streaming CPU µs/token: {relay}")
        for surface in SURFACES:
            steady = await probes.relay_cpu(stack, surface, HEADLINE_K, plan.relay_tokens, plan.relay_window_s)
            surfaces[surface]["steady_streaming"] = steady
            log(f"{surface} steady streaming: {steady}")

        answer = await probes.finished_answer(stack, redis, client, plan.answer_tokens)
        log(f"finished answer: {answer['events']} events, {answer['bytes']} bytes in Redis, exact {answer['exact']}")
        resume = await probes.resume_cost(client, answer, plan.resume_reps)
        log(f"resume: {resume}")
        storm = await probes.reconnect_storm(client, answer, plan.storm_clients)
        log(f"storm: {storm}")
        peer_answer = await peer_probes.answers(stack, redis, plan.answer_tokens)
        log(f"peer answers: Redis {peer_answer['redis_bytes_finished']} B once done, exact {peer_answer['exact']}")
        peer_resume = await peer_probes.resume_cost(stack, peer_answer, plan.resume_reps)
        log(f"peer resume: {peer_resume}")
        peer_storm = await peer_probes.reconnect_storm(stack, peer_answer, plan.storm_clients)
        log(f"peer storm: {peer_storm}")
        idle_naive = await probes.idle_sse_naive(stack, plan.idle_naive)
        log(f"idle naive: {idle_naive['connections']} at {idle_naive['bytes_per_connection']} B each")
        # Each connection is a file descriptor here and in the API (plus the warm-up tenth): stay under the limit.
        idle_count = min(plan.idle_chatrelay, int((fd_limit - 1000) / 1.1))
        idle = await probes.idle_sse_chatrelay(stack, idle_count)
        log(f"idle chatrelay: {idle['connections']} at {idle['bytes_per_connection']} B each")
        idle_peer = await peer_probes.idle_sse(stack, redis, idle_count)
        log(f"idle peer: {idle_peer['connections']} at {idle_peer['bytes_per_connection']} B each")
    finally:
        await redis.aclose()
        stack.stop()
    for key in ("text", "entry_ids"):
        answer.pop(key)
    for key in ("held_id", "held_events"):
        peer_answer.pop(key)
    all_points = [p for d in DESIGNS for p in swept["points"][d]] + [native, reasoning]
    all_points += [s["load"] for s in surfaces.values()]
    mismatches = sum(p["mismatches"] for p in all_points) + (0 if answer["exact"] else 1)
    mismatches += storm["clients"] - storm["exact"] - storm["failed"]
    steadies = [*relay.values(), *(s["steady_streaming"] for s in surfaces.values())]
    mismatches += sum(r["chats"] - r["exact"] - r["failed"] for r in steadies)
    mismatches += (0 if peer_answer["exact"] else 1) + peer_resume["wrong_first_events"]
    mismatches += peer_storm["clients"] - peer_storm["exact"] - peer_storm["failed"]
    load1, load5, _ = os.getloadavg()
    return {
        "plan": plan.name,
        "void": mismatches > 0,
        "mismatches": mismatches,
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": [round(load1, 2), round(load5, 2)],
            "open_file_limit": fd_limit,
        },
        "load": {"tokens_per_chat": plan.tokens, "tokens_per_second": 30, "ttft_ms": TTFT_MS},
        "sweep": swept,
        "native_profile": native,  # the native SSE at K=100 beside the reasoning profile and the surfaces
        "reasoning_profile": reasoning,
        "steady_streaming": relay,
        "surfaces": surfaces,
        "redis_memory_per_chat": answer,
        "resume": resume,
        "storm": storm,
        # The peer's figures that have no K: its answers in Redis and in memory, resume, storm (bench.peer_probes).
        PEER: {"answer": peer_answer, "resume": peer_resume, "storm": peer_storm},
        "idle_sse": {CHATRELAY: idle, NAIVE: idle_naive, PEER: idle_peer},
    }


def main(plan: Plan, log: Any) -> dict[str, Any]:
    import uvloop  # the load client on uvloop too, as the servers are (uvicorn[standard])

    return uvloop.run(run(plan, log))
