"""A small spec-following SSE reader for the tests, and the answer assembly rule clients use."""

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: str

    @property
    def json(self) -> Any:
        return orjson.loads(self.data)


TERMINAL = {"done", "error", "cancelled"}


async def iter_sse(response: httpx.Response) -> AsyncIterator[SseEvent | str]:
    """Events as the WHATWG parser sees them; comments come out as plain strings."""
    buffer = ""
    event_id: str | None = None
    event_type = ""
    data: list[str] = []
    async for chunk in response.aiter_text():
        buffer += chunk
        while True:
            # Lines end in CRLF, LF or CR; a CR at the end of the buffer may still be half of a CRLF.
            cut = -1
            for i, ch in enumerate(buffer):
                if ch == "\n" or (ch == "\r" and i + 1 < len(buffer)):
                    cut = i
                    break
            if cut < 0:
                break
            line = buffer[:cut]
            skip = 2 if buffer[cut] == "\r" and buffer[cut + 1 : cut + 2] == "\n" else 1
            buffer = buffer[cut + skip :]
            if line == "":
                if data or event_type:
                    yield SseEvent(event_id, event_type or "message", "\n".join(data))
                event_type, data = "", []
                continue
            if line.startswith(":"):
                yield line
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "event":
                event_type = value
            elif name == "data":
                data.append(value)


def assemble(events: list[SseEvent]) -> str:
    """The answer: the concatenation of `delta` texts after the last `reset`."""
    text: list[str] = []
    for event in events:
        if event.event == "reset":
            text = []
        elif event.event == "delta":
            text.append(event.json["text"])
    return "".join(text)


def assemble_message(events: list[SseEvent]) -> dict[str, Any]:
    """Every kind of the answer after the last `reset`, as a client assembles it from the events: content,
    reasoning, refusal, and each tool call's id, name and concatenated arguments, by index."""
    kinds: dict[str, list[str]] = {"delta": [], "reasoning": [], "refusal": []}
    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if event.event == "reset":
            kinds = {k: [] for k in kinds}
            calls = {}
        elif event.event in kinds:
            kinds[event.event].append(event.json["text"])
        elif event.event == "tool_call":
            data = event.json
            call = calls.setdefault(data["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] += data.get("id") or ""
            call["name"] += data.get("name") or ""
            call["arguments"] += data["arguments"]
    return {
        "content": "".join(kinds["delta"]),
        "reasoning": "".join(kinds["reasoning"]),
        "refusal": "".join(kinds["refusal"]),
        "tool_calls": [calls[i] for i in sorted(calls)],
    }


def sent_message(record: dict[str, Any]) -> dict[str, Any]:
    """What the demo upstream sent, in `assemble_message`'s shape."""
    return {
        "content": record["sent_text"],
        "reasoning": record["sent_reasoning"],
        "refusal": record["sent_refusal"],
        "tool_calls": record["sent_tool_calls"],
    }


async def read_events(
    client: httpx.AsyncClient,
    url: str,
    last_event_id: str | None = None,
    offset: str | None = None,
    stop_after: int | None = None,
    keep_on_drop: bool = False,
    on_event: Callable[[SseEvent], None] | None = None,
) -> tuple[int, list[SseEvent], list[str]]:
    """Read a stream's SSE response: (status, events, comments). `stop_after` drops the connection after that
    many events, like a reload or a network cut would. `keep_on_drop` returns what was read when the server
    goes away mid-response, as a browser keeps what it rendered. `on_event` sees each event as it arrives, so a
    test can act once a reader has got somewhere instead of guessing how long that takes."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    params = {"offset": offset} if offset is not None else {}
    events: list[SseEvent] = []
    comments: list[str] = []
    async with client.stream("GET", url, headers=headers, params=params or None) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, events, comments
        try:
            async for item in iter_sse(response):
                if isinstance(item, str):
                    comments.append(item)
                    continue
                events.append(item)
                if on_event is not None:
                    on_event(item)
                if stop_after is not None and len(events) >= stop_after:
                    break
        except httpx.TransportError:
            if not keep_on_drop:
                raise
    return 200, events, comments


async def read_with_disconnects(
    client: httpx.AsyncClient, url: str, cuts: int, rng: random.Random, clients: list[httpx.AsyncClient] | None = None
) -> tuple[list[SseEvent], int]:
    """Read to the end, dropping the connection after a random number of events `cuts` times and resuming with
    `Last-Event-ID` (alternating between `clients` when given). Returns every event seen, and the reconnects."""
    seen: list[SseEvent] = []
    last_id: str | None = None
    reconnects = 0
    pool = clients or [client]
    while True:
        stop_after = rng.randint(1, 12) if reconnects < cuts else None
        status, events, _ = await read_events(
            pool[reconnects % len(pool)], url, last_event_id=last_id, stop_after=stop_after
        )
        assert status == 200, f"status {status}"
        seen += events
        if events:
            last_id = events[-1].id
        if seen and seen[-1].event in TERMINAL:
            return seen, reconnects
        reconnects += 1
