"""The probes that are not about steady load, for the peer (`bench.peer`), where they apply to it.

The library can resume only an answer that is still running: once its producer has read the model's stream to the
end, the sentinel says `DONE` and the text is gone (the README: "save the complete output to a database"). So the
peer's resume and storm probes use a `tokens`-token answer whose model stalls after its last token: its producer
holds all of it, as it would while the model thinks. chatrelay's run on the finished answer of the same length.
"""

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from bench.client import HttpClient, Reply, SseEvent, _Connection
from bench.load import assemble, demo_model, fetch_records
from bench.peer import frame_chars, resume_path, sentinel_key, start_peer
from bench.probes import open_many, per_connection
from bench.stack import Stack
from bench.stats import summarize
from cli.processes import free_port


def _text(events: list[SseEvent]) -> str:
    return assemble(Reply(events=events))[0]


async def _start(client: HttpClient, chat_id: str, model: str, stop_after: int | None = None) -> Reply:
    body = {"id": chat_id, "model": model, "messages": [{"role": "user", "content": "benchmark"}]}
    return await client.fetch("POST", "/chat", body, None, stop_after)


async def answers(stack: Stack, redis: Redis, tokens: int) -> dict[str, Any]:
    """Two `tokens`-token answers, a token every 2 ms as chatrelay's finished answer: one read to its end (its Redis
    footprint; a resume of it then), and one the model stalls after its last token, held for `resume_cost` and
    `reconnect_storm`. Both checked against the upstream."""
    client = HttpClient(stack.peer_url)
    done_id, held_id = "peer-finished", "peer-held"
    held_model = demo_model(tokens + 1, 2, 0, 7) + f"&stall_after={tokens}"
    finished, held = await asyncio.gather(
        _start(client, done_id, demo_model(tokens, 2, 0, 7)), _start(client, held_id, held_model, tokens)
    )
    records = await fetch_records(stack.demo_url, [done_id, held_id])
    finished_exact = finished.complete and records[done_id].get("finished") is True
    finished_exact = finished_exact and _text(finished.events) == records[done_id]["sent_text"]
    held_exact = len(held.events) == tokens and _text(held.events) == records[held_id]["sent_text"]
    usage: dict[str, int] = {}
    for name, chat_id in (("finished", done_id), ("held", held_id)):
        size = await redis.memory_usage(sentinel_key(stack.keys.prefix, chat_id), samples=0)
        usage[name] = int(size or 0)
    after_done = await client.fetch("GET", resume_path(done_id))
    return {
        "tokens": tokens,
        "events": sum(1 for e in finished.events if e.event == b"delta"),
        "exact": finished_exact and held_exact,
        "redis_bytes_finished": usage["finished"],  # the `DONE` sentinel, kept 24 h; the text is not kept
        "redis_bytes_running": usage["held"],
        "producer_holds_chars": frame_chars(held.events),  # the held answer's SSE text, in the Node process
        "resume_after_done_status": after_done.status,  # 422: "Stream is already done"
        "held_id": held_id,
        "held_events": held.events,
    }


async def resume_cost(stack: Stack, held: dict[str, Any], reps: int) -> dict[str, Any]:
    """Time to the first replayed event for a resume at the start, the middle and the end of the held answer, at the
    same places as chatrelay's (after the middle event; before the last); each first event is checked."""
    client = HttpClient(stack.peer_url)
    events: list[SseEvent] = held["held_events"]
    firsts = {"start": 0, "middle": len(events) // 2 + 1, "end": len(events) - 1}
    out: dict[str, Any] = {}
    wrong = 0
    for position, first in firsts.items():
        skip = frame_chars(events[:first]) if first else None
        times: list[float] = []
        for _ in range(reps):
            reply = await client.fetch("GET", resume_path(held["held_id"], skip), None, None, 1)
            if not reply.events:
                raise RuntimeError(f"a peer resume at the {position} got no event (HTTP {reply.status})")
            wrong += reply.events[0].data != events[first].data
            times.append((reply.events[0].at - reply.sent_at) * 1000)
        out[position] = summarize(times)
    out["wrong_first_events"] = wrong
    return out


async def reconnect_storm(stack: Stack, held: dict[str, Any], clients: int) -> dict[str, Any]:
    """`clients` readers resume the held answer after its middle event at once and read the rest; each must get
    exactly the rest of the answer. A resume the producer does not answer within the library's 1 s fails."""
    client = HttpClient(stack.peer_url)
    events: list[SseEvent] = held["held_events"]
    middle = len(events) // 2 + 1
    rest = len(events) - middle
    expected = _text(events[middle:])
    path = resume_path(held["held_id"], frame_chars(events[:middle]))
    start = time.time()
    replies = await asyncio.gather(
        *(client.fetch("GET", path, None, None, rest) for _ in range(clients)), return_exceptions=True
    )
    ok = [r for r in replies if isinstance(r, Reply) and r.status == 200]
    exact = sum(1 for r in ok if len(r.events) == rest and _text(r.events) == expected)
    firsts = [(r.events[0].at - start) * 1000 for r in ok if r.events]
    lasts = [(r.events[-1].at - start) * 1000 for r in ok if r.events]
    return {
        "clients": clients,
        "events_each": rest,
        "exact": exact,
        "failed": clients - len(ok),
        "failed_statuses": sorted(
            {str(r.status) if isinstance(r, Reply) else type(r).__name__ for r in replies} - {"200"}
        ),
        "first_event_ms": summarize(firsts),
        "all_done_ms": round(max(lasts, default=float("nan")), 1),
    }


async def idle_sse(stack: Stack, redis: Redis, count: int) -> dict[str, Any]:
    """`count` readers following one running answer that sends nothing (the model has not answered yet): the RSS
    growth per connection of a peer process started for this alone (as chatrelay's), and of Redis (each reader is a
    pub/sub channel)."""
    url = start_peer(stack.group, free_port(), stack.redis_url, f"{stack.demo_url}/v1", stack.keys.prefix, "peer-idle")
    client = HttpClient(url)
    chat_id = "peer-idle"
    producer = await client.open(
        "POST",
        "/chat",
        {
            "id": chat_id,
            "model": "chatrelay-demo?ttft_ms=3600000&tokens=5",
            "messages": [{"role": "user", "content": "idle"}],
        },
    )
    redis_before = int((await redis.info("memory"))["used_memory"])

    retries = 0

    async def open_one() -> _Connection:
        # A resume the producer does not answer within the library's 1 s fails (HTTP 500): try again, as a
        # client would, and count it.
        nonlocal retries
        for _ in range(3):
            conn = await client.open("GET", resume_path(chat_id))
            if conn.reply.status == 200:
                return conn
            await conn.finished
            retries += 1
        raise RuntimeError(f"GET {resume_path(chat_id)} answered {conn.reply.status} three times")

    started = time.monotonic()
    conns: list[_Connection] = []
    try:
        conns, samples = await open_many(open_one, count, 200, stack.group.procs["peer-idle"].pid, 5)
        opened_s = time.monotonic() - started
        live = sum(1 for c in conns if not c.finished.done())
        redis_after = int((await redis.info("memory"))["used_memory"])
    finally:
        # No cancel: the readers hang up; the producer waits for the model until the stack stops.
        for c in [*conns, producer]:
            c.close()
        stack.group.stop("peer-idle")
    return {
        "connections": len(conns),
        "open_at_measurement": live,
        "seconds_to_open": round(opened_s, 1),
        "rss_samples": [{"connections": n, "rss_bytes": rss} for n, rss in samples],
        "bytes_per_connection": round(per_connection(samples)),
        "redis_bytes_per_connection": round((redis_after - redis_before) / max(1, len(conns))),
        "retries": retries,
    }
