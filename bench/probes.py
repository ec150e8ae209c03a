"""Figures that are not about steady load: Redis commands and memory per chat, memory per idle SSE connection,
and what a resume costs (one client at the start, middle or end of an answer; a storm of clients at once)."""

import asyncio
import contextlib
import time
from typing import Any

import orjson
from redis.asyncio import Redis

from bench.client import HttpClient, Reply, _Connection
from bench.load import NAIVE, PEER, RUNNERS, SERVED_BY_CHATRELAY, Chat, assemble, demo_model, fetch_records
from bench.stack import Stack, cpu_seconds, rss_bytes
from bench.stats import summarize
from cli.processes import free_port


async def commandstats(redis: Redis) -> dict[str, int]:
    """Calls per command since Redis started (INFO commandstats)."""
    info: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in info.items()}


def commands_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return dict(sorted(((k, v) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1]))


async def wait_status(client: HttpClient, stream_id: str, statuses: set[str], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await client.fetch("GET", f"/api/streams/{stream_id}")
        body = reply.json()
        assert isinstance(body, dict), body
        status = str(body["status"])
        if status in statuses:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream_id} still {status} after {timeout_s} s")
        await asyncio.sleep(0.05)


async def create_chat(client: HttpClient, model: str, text: str = "benchmark") -> str:
    reply = await client.fetch(
        "POST", "/api/streams", {"messages": [{"role": "user", "content": text}], "model": model}
    )
    if reply.status != 202:
        raise RuntimeError(f"POST /api/streams answered {reply.status}: {reply.body[:200]!r}")
    body = reply.json()
    assert isinstance(body, dict)
    return str(body["id"])


async def finished_answer(stack: Stack, redis: Redis, client: HttpClient, tokens: int) -> dict[str, Any]:
    """Generate one `tokens`-token answer (a token every 2 ms: about one event per token, the most memory), read it
    whole, check it against the upstream, and measure its keys with MEMORY USAGE."""
    stream_id = await create_chat(client, demo_model(tokens, 2, 0, 7))
    reply = await client.fetch("GET", f"/api/streams/{stream_id}/events")
    record = (await fetch_records(stack.demo_url, [stream_id]))[stream_id]
    text, _, _, _ = assemble(reply)
    k = stack.keys
    keys = {"events": k.events(stream_id), "meta": k.meta(stream_id), "request": k.request(stream_id)}
    keys["lease"] = k.lease(stream_id)
    usage: dict[str, int] = {}
    for name, key in keys.items():
        size = await redis.memory_usage(key, samples=0)
        if size is not None:
            usage[name] = int(size)
    arq_keys = {name: f"arq:{name}:{stream_id}" for name in ("job", "result", "in-progress")}
    arq_usage = {name: int(s) for name, key in arq_keys.items() if (s := await redis.memory_usage(key, samples=0))}
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(k.events(stream_id))
    return {
        "stream_id": stream_id,
        "exact": reply.complete and record.get("finished") is True and text == record["sent_text"],
        "tokens": tokens,
        "events": len(entries),
        "chars": len(text),
        "text": text,
        "entry_ids": [e[0] for e in entries],
        "bytes_by_key": usage,
        "bytes": sum(usage.values()),
        "arq_bytes_by_key": arq_usage,  # arq's job result; it expires after the worker's keep_result (60 s)
    }


def _text_after(reply: Reply) -> str:
    return assemble(reply)[0]


async def resume_cost(client: HttpClient, answer: dict[str, Any], reps: int) -> dict[str, Any]:
    """Time to the first replayed event for a resume at the start, the middle and the end of `answer`."""
    ids: list[bytes] = answer["entry_ids"]
    offsets = {"start": None, "middle": ids[len(ids) // 2], "end": ids[-2]}
    out: dict[str, Any] = {}
    for position, offset in offsets.items():
        times: list[float] = []
        for _ in range(reps):
            headers = {"Last-Event-ID": offset.decode()} if offset else {}
            reply = await client.fetch("GET", f"/api/streams/{answer['stream_id']}/events", None, headers, 1)
            if not reply.events:
                raise RuntimeError(f"a resume at the {position} got no event (HTTP {reply.status})")
            times.append((reply.events[0].at - reply.sent_at) * 1000)
        out[position] = summarize(times)
    return out


async def reconnect_storm(client: HttpClient, answer: dict[str, Any], clients: int) -> dict[str, Any]:
    """`clients` readers reconnect at once in the middle of `answer` and read it to the end; each must get
    exactly the rest of the answer."""
    ids: list[bytes] = answer["entry_ids"]
    middle = ids[len(ids) // 2]
    path = f"/api/streams/{answer['stream_id']}/events"
    # What follows the middle entry: the full text minus what the first half of the replay held.
    first_half = await client.fetch("GET", path, None, None, len(ids) // 2 + 1)
    expected = answer["text"][len(_text_after(first_half)) :]
    start = time.time()
    replies = await asyncio.gather(
        *(client.fetch("GET", path, None, {"Last-Event-ID": middle.decode()}) for _ in range(clients)),
        return_exceptions=True,
    )
    ok = [r for r in replies if isinstance(r, Reply)]
    exact = sum(1 for r in ok if r.complete and _text_after(r) == expected)
    firsts = [(r.events[0].at - start) * 1000 for r in ok if r.events]
    lasts = [(r.events[-1].at - start) * 1000 for r in ok if r.events]
    return {
        "clients": clients,
        "events_each": len(ids) - len(ids) // 2 - 1,
        "exact": exact,
        "failed": clients - len(ok),
        "first_event_ms": summarize(firsts),
        "all_done_ms": round(max(lasts, default=float("nan")), 1),
    }


async def open_many(
    open_one: Any, count: int, parallel: int, pid: int, steps: int
) -> tuple[list[_Connection], list[tuple[int, int]]]:
    """Open a warm-up tenth, then `count` connections in `steps` batches (at most `parallel` at a time), sampling
    the server's RSS after each batch."""
    conns: list[_Connection] = []
    limit = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with limit:
            conns.append(await open_one())

    async def batch(size: int) -> None:
        await asyncio.gather(*(one() for _ in range(size)))
        await asyncio.sleep(0.5)  # let the server settle (the relays reach their idle wait)

    await batch(max(1, count // 10))  # first-use allocations (buffers, caches) are not per connection
    samples = [(len(conns), rss_bytes(pid))]
    step = max(1, count // steps)
    for begin in range(0, count, step):
        await batch(min(step, count - begin))
        samples.append((len(conns), rss_bytes(pid)))
    return conns, samples


def per_connection(samples: list[tuple[int, int]]) -> float:
    """The least-squares slope of RSS against open connections: bytes per connection."""
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var = sum((x - mean_x) ** 2 for x, _ in samples)
    return sum((x - mean_x) * (y - mean_y) for x, y in samples) / var if var else float("nan")


async def idle_sse_chatrelay(stack: Stack, count: int) -> dict[str, Any]:
    """`count` SSE connections following one running stream that sends nothing (the model has not answered yet):
    the RSS growth per connection of an API process started for this alone (the load's leftovers would blur it)."""
    url = stack.group.start_api(free_port(), "api-idle")
    pid = stack.group.procs["api-idle"].pid
    client = HttpClient(url, stack.auth)
    stream_id = await create_chat(client, "chatrelay-demo?ttft_ms=3600000&tokens=5")
    await wait_status(client, stream_id, {"running"})
    path = f"/api/streams/{stream_id}/events"

    async def open_one() -> _Connection:
        conn = await client.open("GET", path)
        if conn.reply.status != 200:
            raise RuntimeError(f"GET {path} answered {conn.reply.status}")
        return conn

    started = time.monotonic()
    conns: list[_Connection] = []
    try:
        conns, samples = await open_many(open_one, count, 200, pid, 5)
        opened_s = time.monotonic() - started
        live = sum(1 for c in conns if not c.finished.done())
    finally:
        cancel = await client.fetch("POST", f"/api/streams/{stream_id}/cancel", {})
        if cancel.status != 202:
            raise RuntimeError(f"cancel answered {cancel.status}: {cancel.body[:200]!r}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await asyncio.gather(*(c.finished for c in conns))
        for c in conns:
            c.close()
        stack.group.stop("api-idle")
    ended = sum(1 for c in conns if c.reply.events and c.reply.events[-1].event == b"cancelled")
    return {
        "connections": len(conns),
        "open_at_measurement": live,
        "seconds_to_open": round(opened_s, 1),
        "rss_samples": [{"connections": n, "rss_bytes": rss} for n, rss in samples],
        "bytes_per_connection": round(per_connection(samples)),
        "ended_with_cancelled": ended,
    }


async def idle_sse_naive(stack: Stack, count: int) -> dict[str, Any]:
    """The same for the naive design: each open chat holds its own upstream request (the model has not answered)."""
    client = HttpClient(stack.naive_url)
    model = "chatrelay-demo?ttft_ms=3600000&tokens=5"

    async def open_one() -> _Connection:
        body = {"id": "naive-idle", "model": model, "messages": [{"role": "user", "content": "idle"}]}
        return await client.open("POST", "/chat", body)

    conns: list[_Connection] = []
    try:
        conns, samples = await open_many(open_one, count, 100, stack.pids["naive"], 4)
    finally:
        for c in conns:
            c.close()
    await asyncio.sleep(1)
    return {
        "connections": len(conns),
        "rss_samples": [{"connections": n, "rss_bytes": rss} for n, rss in samples],
        "bytes_per_connection": round(per_connection(samples)),
    }


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


async def relay_cpu(stack: Stack, design: str, chats: int, tokens: int, window_s: float) -> dict[str, Any]:
    """CPU per token of steady streaming alone: `chats` answers at 30 tokens/s are all open, and the CPU of each
    process is read over a window in which no chat starts or ends (no POST, no new SSE response)."""
    chatrelay = design in SERVED_BY_CHATRELAY
    client = HttpClient({NAIVE: stack.naive_url, PEER: stack.peer_url}.get(design, stack.api_url))
    owners = stack.owners()
    model = demo_model(tokens, 1000 / 30, 0, 11)
    runs = [Chat("", i, headers=owners[i % len(owners)] if chatrelay else None) for i in range(chats)]
    run = RUNNERS[design]
    tasks = [asyncio.create_task(run(client, model, chat)) for chat in runs]
    await asyncio.sleep(2.0)  # every chat is streaming by now
    names = {NAIVE: ("naive",), PEER: ("peer", "redis")}.get(design) or (
        "api",
        "redis",
        *(n for n in stack.pids if n.startswith("worker")),
    )
    t0 = time.time()
    before = {n: cpu_seconds(stack.pids[n]) for n in names}
    await asyncio.sleep(window_s)
    after = {n: cpu_seconds(stack.pids[n]) for n in names}
    t1 = time.time()
    await asyncio.gather(*tasks)
    records = await fetch_records(stack.demo_url, [c.chat_id for c in runs])
    emitted = sum(1 for r in records.values() for _, at in r["emits"] if t0 <= at < t1)
    exact, failed = 0, 0
    for c in runs:
        record = records.get(c.chat_id, {})
        if c.reply and record.get("sent_text") == assemble(c.reply)[0]:
            exact += 1
        elif not (c.reply and c.reply.complete and record.get("finished")):
            failed += 1  # no answer (an overloaded app's error, no upstream request): not a wrong one
    return {
        "chats": chats,
        "window_s": window_s,
        "tokens_in_window": emitted,
        "exact": exact,
        "failed": failed,
        "cpu_us_per_token": {n: round((after[n] - before[n]) * 1e6 / max(1, emitted), 1) for n in names},
    }
