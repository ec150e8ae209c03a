"""Open-loop load: chats arriving as a Poisson process, read over SSE, checked and timed against the upstream.

Per-token added latency is the time a token's last character reached the client minus the time the demo
upstream emitted that token (its `stamp` record); both clocks are this machine's `time.time()`. A token is
matched to the first SSE delta that completes it, so coalesced writes are measured per token too.
"""

import asyncio
import bisect
import random
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from bench.client import HttpClient, Reply, SseEvent
from bench.stats import summarize
from contract.keys import Keys

NAIVE = "naive"
CHATRELAY = "chatrelay"
PEER = "peer"  # Vercel's resumable-stream (bench.peer)
DESIGNS = (NAIVE, PEER, CHATRELAY)  # the order each K runs them in
# chatrelay's other framings of the same stored stream, read by the same client; measured beside the native SSE.
RESPONSES = "chatrelay-responses"  # POST /v1/responses, background and streamed (OpenAI Responses)
UI_STREAM = "chatrelay-ui-stream"  # POST /api/chat (the AI SDK's UI message stream)
SURFACES = (RESPONSES, UI_STREAM)
SERVED_BY_CHATRELAY = (CHATRELAY, *SURFACES)  # what runs on chatrelay's API, workers and Redis


@dataclass
class Chat:
    """One chat as the client saw it."""

    chat_id: str
    seed: int
    sent_at: float = 0.0  # the first request left (before connect)
    accepted_at: float | None = None  # chatrelay: the 202 arrived
    reply: Reply | None = None
    error: str | None = None
    headers: dict[str, str] | None = None  # chatrelay: the owner's API key


@dataclass
class ChatOutcome:
    exact: bool
    latencies_ms: list[float]
    # Stages of the time to first token (ms): enqueue, queue_wait, worker_start, model, first_relay.
    stages: dict[str, float]
    tokens: int


@dataclass
class LoadResult:
    design: str
    target_concurrency: int
    chats: int
    measured_chats: int
    errors: int
    mismatches: int
    resets: int  # chats whose answer was retried after a lost worker (a `reset` event); still checked exactly
    tokens: int
    duration_s: float
    mean_concurrency: float
    latency_ms: dict[str, float]
    ttft_ms: dict[str, dict[str, float]]
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    examples_of_errors: list[str] = field(default_factory=list)

    @property
    def void(self) -> bool:
        return self.mismatches > 0

    def summary(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "target_concurrency": self.target_concurrency,
            "mean_concurrency": round(self.mean_concurrency, 1),
            "chats": self.chats,
            "measured_chats": self.measured_chats,
            "errors": self.errors,
            "mismatches": self.mismatches,
            "resets": self.resets,
            "tokens": self.tokens,
            "duration_s": round(self.duration_s, 2),
            "added_latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "examples_of_errors": self.examples_of_errors[:3],
        }


def demo_model(tokens: int, delay_ms: float, ttft_ms: float, seed: int, scene: str = "text") -> str:
    # tricky=1 mixes newlines, fake SSE fields, emoji and other scripts into the text: exactness must hold.
    # scene=reasoning streams the first half of the tokens as reasoning, the rest as the answer.
    model = f"chatrelay-demo?tokens={tokens}&delay_ms={delay_ms}&ttft_ms={ttft_ms}&seed={seed}&tricky=1&stamp=1"
    return model if scene == "text" else f"{model}&scene={scene}"


def _messages(seed: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"benchmark chat {seed}"}]


async def chatrelay_chat(client: HttpClient, model: str, chat: Chat) -> None:
    request = {"messages": _messages(chat.seed), "model": model}
    created = await client.fetch("POST", "/api/streams", request, chat.headers)
    chat.sent_at, chat.accepted_at = created.sent_at, created.headers_at
    if created.status != 202:
        raise RuntimeError(f"POST /api/streams answered {created.status}: {created.body[:200]!r}")
    body = created.json()
    assert isinstance(body, dict)
    chat.chat_id = str(body["id"])
    chat.reply = await client.fetch("GET", f"/api/streams/{chat.chat_id}/events", None, chat.headers)


async def naive_chat(client: HttpClient, model: str, chat: Chat) -> None:
    chat.chat_id = "naive-" + secrets.token_hex(8)
    body = {"id": chat.chat_id, "model": model, "messages": _messages(chat.seed)}
    chat.reply = await client.fetch("POST", "/chat", body)
    chat.sent_at = chat.reply.sent_at


async def peer_chat(client: HttpClient, model: str, chat: Chat) -> None:
    """The peer takes the same request as the naive app: its POST /chat is the producer's stream."""
    chat.chat_id = "peer-" + secrets.token_hex(8)
    body = {"id": chat.chat_id, "model": model, "messages": _messages(chat.seed)}
    chat.reply = await client.fetch("POST", "/chat", body)
    chat.sent_at = chat.reply.sent_at


def _as_native(reply: Reply, deltas: dict[str, bytes], done: str) -> None:
    """Rewrite a surface's events as the native ones `assemble` and `analyse` read: its text and reasoning deltas
    as `delta` / `reasoning`, its normal ending as `done`; each keeps the time its bytes arrived."""
    events: list[SseEvent] = []
    for event in reply.events:
        if event.data == b"[DONE]":
            continue
        body = orjson.loads(event.data)
        kind = body.get("type", event.event.decode())
        if kind in deltas:
            events.append(SseEvent(None, deltas[kind], orjson.dumps({"text": body["delta"]}), event.at))
        elif kind == done:
            events.append(SseEvent(None, b"done", event.data, event.at))
    reply.events = events


async def responses_chat(client: HttpClient, model: str, chat: Chat) -> None:
    """The OpenAI SDK's `responses.create(background=True, stream=True)`, as its HTTP request."""
    request = {"model": model, "input": f"benchmark chat {chat.seed}", "background": True, "stream": True}
    chat.reply = await client.fetch("POST", "/v1/responses", request, chat.headers)
    chat.sent_at = chat.reply.sent_at
    if chat.reply.status != 200 or not chat.reply.events:
        raise RuntimeError(f"POST /v1/responses answered {chat.reply.status}: {chat.reply.body[:200]!r}")
    chat.chat_id = str(orjson.loads(chat.reply.events[0].data)["response"]["id"]).removeprefix("resp_")
    deltas = {"response.output_text.delta": b"delta", "response.reasoning_text.delta": b"reasoning"}
    _as_native(chat.reply, deltas, "response.completed")


async def ui_stream_chat(client: HttpClient, model: str, chat: Chat) -> None:
    """The AI SDK's `DefaultChatTransport` sending a chat's first message, as its HTTP request."""
    message = {
        "id": f"m{chat.seed}",
        "role": "user",
        "parts": [{"type": "text", "text": f"benchmark chat {chat.seed}"}],
    }
    request = {
        "id": "bench-" + secrets.token_hex(8),
        "messages": [message],
        "trigger": "submit-message",
        "model": model,
    }
    chat.reply = await client.fetch("POST", "/api/chat", request, chat.headers)
    chat.sent_at = chat.reply.sent_at
    stream_id = dict(chat.reply.headers).get(b"x-chatrelay-stream-id")
    if chat.reply.status != 200 or stream_id is None:
        raise RuntimeError(f"POST /api/chat answered {chat.reply.status}: {chat.reply.body[:200]!r}")
    chat.chat_id = stream_id.decode()
    _as_native(chat.reply, {"text-delta": b"delta", "reasoning-delta": b"reasoning"}, "finish")


RUNNERS: dict[str, Callable[[HttpClient, str, Chat], Coroutine[Any, Any, None]]] = {
    NAIVE: naive_chat,
    PEER: peer_chat,
    CHATRELAY: chatrelay_chat,
    RESPONSES: responses_chat,
    UI_STREAM: ui_stream_chat,
}


def assemble(reply: Reply) -> tuple[str, str, list[int], list[float]]:
    """The answer's text and reasoning after the last reset, and each event's cumulative length (reasoning and
    text together, in order, as the demo model stamps its emits) and arrival time."""
    parts: dict[bytes, list[str]] = {b"delta": [], b"reasoning": []}
    ends: list[int] = []
    times: list[float] = []
    total = 0
    for event in reply.events:
        if event.event == b"reset":
            parts, ends, times, total = {b"delta": [], b"reasoning": []}, [], [], 0
        elif event.event in parts:
            text = orjson.loads(event.data)["text"]
            parts[event.event].append(text)
            total += len(text)
            ends.append(total)
            times.append(event.at)
    return "".join(parts[b"delta"]), "".join(parts[b"reasoning"]), ends, times


def analyse(chat: Chat, record: dict[str, Any], meta: dict[bytes, bytes] | None) -> ChatOutcome:
    assert chat.reply is not None
    text, reasoning, ends, times = assemble(chat.reply)
    exact = bool(record.get("finished")) and chat.reply.complete
    exact = exact and text == record["sent_text"] and reasoning == record.get("sent_reasoning", "")
    latencies: list[float] = []
    for end, emitted in record["emits"]:
        i = bisect.bisect_left(ends, end)
        if i < len(times):
            latencies.append((times[i] - emitted) * 1000)
    stages: dict[str, float] = {}
    if record["emits"] and times:
        first_emit = record["emits"][0][1]
        upstream_start = float(record["started_at"])
        stages["model"] = (first_emit - upstream_start) * 1000
        stages["first_relay"] = (times[0] - first_emit) * 1000
        if meta is not None and chat.accepted_at is not None:
            started = int(meta[b"started_at"]) / 1000
            stages["enqueue"] = (chat.accepted_at - chat.sent_at) * 1000
            stages["queue_wait"] = (started - chat.accepted_at) * 1000
            stages["worker_start"] = (upstream_start - started) * 1000
        else:
            stages["enqueue"] = 0.0
            stages["queue_wait"] = 0.0
            stages["worker_start"] = (upstream_start - chat.sent_at) * 1000
        stages["ttft"] = (times[0] - chat.sent_at) * 1000
        stages["overhead"] = stages["ttft"] - stages["model"]
    return ChatOutcome(exact, latencies, stages, len(record["emits"]))


async def fetch_records(demo_url: str, chat_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=demo_url, timeout=60) as demo:

        async def one(chat_id: str) -> None:
            async with limit:
                records = (await demo.get("/_demo/requests", params={"stream_id": chat_id})).json()
            if records:
                found[chat_id] = records[-1]

        await asyncio.gather(*(one(c) for c in chat_ids))
    return found


async def fetch_metas(redis: Redis, keys: Keys, chat_ids: list[str]) -> dict[str, dict[bytes, bytes]]:
    async with redis.pipeline(transaction=False) as pipe:
        for chat_id in chat_ids:
            pipe.hgetall(keys.meta(chat_id))
        metas: list[dict[bytes, bytes]] = await pipe.execute()
    return dict(zip(chat_ids, metas, strict=True))


async def run_load(
    design: str,
    base_url: str,
    demo_url: str,
    concurrency: int,
    tokens: int,
    delay_ms: float,
    duration_s: float,
    seed: int,
    redis: Redis | None = None,
    keys: Keys | None = None,
    ttft_ms: float = 100.0,
    owners: list[dict[str, str]] | None = None,
    scene: str = "text",
) -> LoadResult:
    """Open-loop Poisson arrivals at the rate that keeps `concurrency` chats open on average (Little's law),
    for `duration_s`; chats that started in the first chat length are warm-up and not measured."""
    rng = random.Random(seed)
    chat_seconds = (ttft_ms + (tokens - 1) * delay_ms) / 1000
    rate = concurrency / chat_seconds
    warmup = min(chat_seconds, duration_s / 3)
    client = HttpClient(base_url)
    run = RUNNERS[design]
    chats: list[Chat] = []
    tasks: list[asyncio.Task[None]] = []
    open_now = 0
    samples: list[int] = []

    async def one(chat: Chat) -> None:
        nonlocal open_now
        open_now += 1
        try:
            # An overloaded design may stall; give up on a chat long after it should have ended.
            async with asyncio.timeout(chat_seconds * 5 + 30):
                await run(client, demo_model(tokens, delay_ms, ttft_ms, chat.seed, scene), chat)
        except Exception as exc:
            chat.error = f"{type(exc).__name__}: {exc}"
        finally:
            open_now -= 1

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.25)
            samples.append(open_now)

    sampler = asyncio.create_task(sample())
    start = time.monotonic()
    due = 0.0
    measured_from = 0
    while True:
        due += rng.expovariate(rate)
        if due >= duration_s:
            break
        delay = start + due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if due < warmup:
            measured_from += 1
        chat = Chat("", seed * 1_000_000 + len(chats), headers=owners[len(chats) % len(owners)] if owners else None)
        chats.append(chat)
        tasks.append(asyncio.create_task(one(chat)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    sampler.cancel()

    ids = [c.chat_id for c in chats if c.chat_id]
    records = await fetch_records(demo_url, ids)
    metas = await fetch_metas(redis, keys, ids) if design in SERVED_BY_CHATRELAY and redis and keys else {}
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    errors, mismatches, total_tokens, resets = 0, 0, 0, 0
    examples: list[str] = []
    for index, chat in enumerate(chats):
        record = records.get(chat.chat_id)
        if chat.error or chat.reply is None or record is None:
            errors += 1
            examples.append(chat.error or f"no upstream record for {chat.chat_id}")
            continue
        outcome = analyse(chat, record, metas.get(chat.chat_id))
        total_tokens += outcome.tokens
        events = chat.reply.events
        resets += any(e.event == b"reset" for e in events)
        if not outcome.exact:
            last = events[-1] if events else None
            if chat.reply.complete and last is not None and last.event == b"done" and record.get("finished"):
                mismatches += 1
                examples.append(f"{chat.chat_id}: the reassembled answer differs from the upstream text")
            else:
                # Not a wrong answer but a failed one (an overloaded worker's lease expired twice: worker_lost).
                errors += 1
                ended = f"{last.event.decode()} {last.data[:120].decode(errors='replace')}" if last else "nothing"
                examples.append(f"{chat.chat_id}: HTTP {chat.reply.status}, ended with {ended}")
            continue
        if index < measured_from:
            continue
        latencies += outcome.latencies_ms
        for name, value in outcome.stages.items():
            stages.setdefault(name, []).append(value)
    steady = samples[int(warmup / 0.25) : int(duration_s / 0.25)] or [0]
    return LoadResult(
        design=design,
        target_concurrency=concurrency,
        chats=len(chats),
        measured_chats=len(chats) - measured_from,
        errors=errors,
        mismatches=mismatches,
        resets=resets,
        tokens=total_tokens,
        duration_s=elapsed,
        mean_concurrency=sum(steady) / len(steady),
        latency_ms=summarize(latencies),
        ttft_ms={name: summarize(values) for name, values in stages.items()},
        latencies_ms=latencies,
        examples_of_errors=examples,
    )
