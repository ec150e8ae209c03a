"""Stored entries into OpenAI Responses stream events, and the Response object they add up to.

A pure state machine over the stream's entries from the first one on: the same entries always give the same
events, with the same `sequence_number`s and item ids, on every replay and every API replica (clients resume with
`starting_after=<sequence_number>`, and the SDK helpers replay from 0 and filter themselves). Nothing is stored
for it: the stream's events are the one copy of the answer.

What the clients forgive (openai-python `lib/streaming/responses/_responses.py`, openai-node
`internal/responses/response-accumulator.ts`): only event types OpenAI defines (node throws "Unhandled response
stream event" on any other, so there is no event for a cancel or a retry), `response.created` first, every item
added with a unique id at the next `output_index` and done before `response.completed`, whose `response.output`
holds every final item. Errors are one `error` event carrying the flat and the nested form (the SDKs raise from
the nested one, flat parsers read the top level), then `response.failed`.

Mapping: `start` → `response.in_progress`; `reasoning` → a reasoning item with one `reasoning_text` part (the
shape for the raw reasoning that vLLM, Ollama and DeepSeek stream); `delta` / `refusal` → `output_text` /
`refusal` parts of a message item; each `tool_call` index → a `function_call` item (fragments of parallel calls
may interleave; each delta names its own item); `done` → `response.completed`, or `response.incomplete` for
`length` / `content_filter`; `error` → `error` + `response.failed`; `cancelled` → the open items end
`incomplete` and the stream ends (the Response's status says `cancelled`).

A `reset` (a retried attempt) is invisible while the response has shown no output; after that the response fails
(`error` + `response.failed`): Responses has no event to take output back, and appending the retry's text would
hand the client an answer that is neither attempt's.
"""

from typing import Any

import orjson

from contract.store import RawEntry

ERROR_CODES = {"rate_limited": "rate_limit_exceeded", "upstream_rejected": "invalid_prompt"}
RETRIED_MESSAGE = (
    "the answer was interrupted after it had begun (its worker was lost) and is being generated again; "
    "this response cannot show the new attempt without repeating output"
)
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(stream_id: str) -> str:
    return f"resp_{stream_id}"


def usage(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat Completions usage in the Responses shape."""
    if not raw:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return {
        "input_tokens": raw.get("prompt_tokens") or 0,
        "input_tokens_details": {"cached_tokens": prompt_details.get("cached_tokens") or 0},
        "output_tokens": raw.get("completion_tokens") or 0,
        "output_tokens_details": {"reasoning_tokens": completion_details.get("reasoning_tokens") or 0},
        "total_tokens": raw.get("total_tokens") or 0,
    }


class _Part:
    __slots__ = ("kind", "texts")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # output_text, refusal, reasoning_text
        self.texts: list[str] = []

    def json(self) -> dict[str, Any]:
        text = "".join(self.texts)
        if self.kind == "output_text":
            return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        if self.kind == "refusal":
            return {"type": "refusal", "refusal": text}
        return {"type": "reasoning_text", "text": text}


class _Item:
    __slots__ = ("arguments", "call_id", "id", "index", "kind", "name", "parts", "status")

    def __init__(self, kind: str, item_id: str, index: int) -> None:
        self.kind = kind  # message, reasoning, function_call
        self.id = item_id
        self.index = index
        self.status = "in_progress"
        self.parts: list[_Part] = []
        self.call_id = ""
        self.name = ""
        self.arguments: list[str] = []

    def json(self, with_content: bool = True) -> dict[str, Any]:
        if self.kind == "function_call":
            return {
                "id": self.id,
                "type": "function_call",
                "status": self.status,
                "arguments": "".join(self.arguments),
                "call_id": self.call_id,
                "name": self.name,
            }
        content = [p.json() for p in self.parts] if with_content else []
        if self.kind == "message":
            return {"id": self.id, "type": "message", "status": self.status, "content": content, "role": "assistant"}
        return {"id": self.id, "type": "reasoning", "summary": [], "content": content, "status": self.status}


class ResponseEvents:
    """The Responses view of one stream. `opening()` gives the events before any entry, `feed(entry)` those of
    one entry; both return the SSE bytes of the events whose sequence number is above `starting_after` (none with
    `emit=False`, for a caller that wants only `response()`)."""

    def __init__(self, stream_id: str, echo: dict[str, Any], starting_after: int = -1, emit: bool = True) -> None:
        self.stream_id = stream_id
        self.echo = echo  # the Response fields that come from the request (`records.echo_fields`)
        self.after = starting_after if emit else float("inf")
        self.seq = 0
        self.status = "queued"
        self.started = False
        self.ended = False
        self.items: list[_Item] = []
        self._open: _Item | None = None  # the message or reasoning item being written
        self._calls: dict[int, _Item] = {}  # open function calls by the upstream's tool-call index
        self._usage: dict[str, Any] | None = None
        self._error: dict[str, str] | None = None
        self._incomplete: str | None = None
        self._completed_at: int | None = None
        self._out: list[bytes] = []

    # Output ---------------------------------------------------------------------------------------------------

    def _emit(self, event_type: str, payload: dict[str, Any]) -> None:
        seq = self.seq
        self.seq += 1
        if seq > self.after:
            body = orjson.dumps({"type": event_type, "sequence_number": seq, **payload})
            self._out.append(b"event: " + event_type.encode() + b"\ndata: " + body + b"\n\n")

    def _take(self) -> bytes:
        out, self._out = self._out, []
        return b"".join(out)

    def response(self) -> dict[str, Any]:
        """The Response object as the entries read so far make it."""
        return {
            "id": response_id(self.stream_id),
            "object": "response",
            **self.echo,
            "status": self.status,
            "completed_at": self._completed_at,
            "error": self._error,
            "incomplete_details": {"reason": self._incomplete} if self._incomplete else None,
            "output": [item.json() for item in self.items],
            "usage": usage(self._usage),
        }

    def _lifecycle(self, event_type: str) -> None:
        if self.seq > self.after:  # the whole Response is built only for events that go out
            self._emit(event_type, {"response": self.response()})
        else:
            self.seq += 1

    # Input ----------------------------------------------------------------------------------------------------

    def opening(self) -> bytes:
        self._lifecycle("response.created")
        if self.echo.get("background"):
            self._lifecycle("response.queued")
        return self._take()

    def feed(self, entry: RawEntry) -> bytes:
        if self.ended:
            return b""
        fields = entry[1]
        kind = fields[b"t"]
        payload: dict[str, Any] = orjson.loads(fields[b"d"])
        if kind == b"delta":
            self._text("output_text", payload["text"])
        elif kind == b"reasoning":
            self._reasoning(payload["text"])
        elif kind == b"tool_call":
            self._tool_call(payload)
        elif kind == b"refusal":
            self._text("refusal", payload["text"])
        elif kind == b"start":
            if not self.started:
                self.started = True
                self.status = "in_progress"
                self._lifecycle("response.in_progress")
        elif kind == b"done":
            self._done(payload, _entry_seconds(entry[0]))
        elif kind == b"error":
            self._fail(str(payload.get("code") or "internal_error"), str(payload.get("message") or ""))
        elif kind == b"cancelled":
            self._close_all("incomplete")
            self.status = "cancelled"
            self._usage = payload.get("usage")
            self.ended = True
        elif kind == b"reset" and self.items:
            self._fail("retried", RETRIED_MESSAGE)
        return self._take()

    # Transitions ----------------------------------------------------------------------------------------------

    def _new_item(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind, f"{prefix}_{self.stream_id}_{len(self.items)}", len(self.items))
        self.items.append(item)
        if kind == "function_call":
            return item
        self._emit("response.output_item.added", {"output_index": item.index, "item": item.json(False)})
        return item

    def _add_part(self, item: _Item, kind: str) -> _Part:
        part = _Part(kind)
        item.parts.append(part)
        self._emit(
            "response.content_part.added",
            {"item_id": item.id, "output_index": item.index, "content_index": len(item.parts) - 1, "part": part.json()},
        )
        return part

    def _text(self, kind: str, text: str) -> None:
        item = self._open
        if item is None or item.kind != "message":
            self._close_all("completed")
            item = self._open = self._new_item("message", "msg")
        part = item.parts[-1] if item.parts else None
        if part is None or part.kind != kind:
            if part is not None:
                self._close_part(item, part)
            part = self._add_part(item, kind)
        part.texts.append(text)
        event = "response.output_text.delta" if kind == "output_text" else "response.refusal.delta"
        where = {"item_id": item.id, "output_index": item.index, "content_index": len(item.parts) - 1}
        if kind == "output_text":
            self._emit(event, {**where, "delta": text, "logprobs": []})
        else:
            self._emit(event, {**where, "delta": text})

    def _reasoning(self, text: str) -> None:
        item = self._open
        if item is None or item.kind != "reasoning":
            self._close_all("completed")
            item = self._open = self._new_item("reasoning", "rs")
            self._add_part(item, "reasoning_text")
        item.parts[0].texts.append(text)
        self._emit(
            "response.reasoning_text.delta",
            {"item_id": item.id, "output_index": item.index, "content_index": 0, "delta": text},
        )

    def _tool_call(self, payload: dict[str, Any]) -> None:
        index = int(payload["index"])
        item = self._calls.get(index)
        if item is None:
            if self._open is not None:
                self._close_item(self._open, "completed")
                self._open = None
            item = self._calls[index] = self._new_item("function_call", "fc")
            item.call_id = payload.get("id") or ""
            item.name = payload.get("name") or ""
            self._emit("response.output_item.added", {"output_index": item.index, "item": item.json()})
        arguments = payload.get("arguments") or ""
        if arguments:
            item.arguments.append(arguments)
            self._emit(
                "response.function_call_arguments.delta",
                {"item_id": item.id, "output_index": item.index, "delta": arguments},
            )

    def _close_part(self, item: _Item, part: _Part) -> None:
        where = {"item_id": item.id, "output_index": item.index, "content_index": item.parts.index(part)}
        text = "".join(part.texts)
        if part.kind == "output_text":
            self._emit("response.output_text.done", {**where, "text": text, "logprobs": []})
        elif part.kind == "refusal":
            self._emit("response.refusal.done", {**where, "refusal": text})
        else:
            self._emit("response.reasoning_text.done", {**where, "text": text})
        self._emit("response.content_part.done", {**where, "part": part.json()})

    def _close_item(self, item: _Item, status: str) -> None:
        if item.kind == "function_call":
            self._emit(
                "response.function_call_arguments.done",
                {
                    "item_id": item.id,
                    "output_index": item.index,
                    "name": item.name,
                    "arguments": "".join(item.arguments),
                },
            )
        elif item.parts:
            self._close_part(item, item.parts[-1])
        item.status = status
        self._emit("response.output_item.done", {"output_index": item.index, "item": item.json()})

    def _close_all(self, status: str) -> None:
        """End every open item, in output order."""
        open_items = [*self._calls.values(), *([self._open] if self._open is not None else [])]
        for item in sorted(open_items, key=lambda i: i.index):
            self._close_item(item, status)
        self._calls.clear()
        self._open = None

    def _done(self, payload: dict[str, Any], at: int) -> None:
        self._incomplete = _INCOMPLETE.get(str(payload.get("finish_reason")))
        self._close_all("incomplete" if self._incomplete else "completed")
        self._usage = payload.get("usage")
        self.ended = True
        if self._incomplete:
            self.status = "incomplete"
            self._lifecycle("response.incomplete")
        else:
            self.status = "completed"
            self._completed_at = at
            self._lifecycle("response.completed")

    def _fail(self, code: str, message: str) -> None:
        self._close_all("incomplete")
        openai_code = ERROR_CODES.get(code, "server_error")
        text = f"{code}: {message}" if message else code
        self.status = "failed"
        self.ended = True
        self._error = {"code": openai_code, "message": text}
        # Flat (as documented, and for flat parsers) and nested (what OpenAI sends; the SDKs raise from it).
        nested = {"type": "server_error", "code": openai_code, "message": text, "param": None}
        self._emit("error", {"code": openai_code, "message": text, "param": None, "error": nested})
        self._lifecycle("response.failed")


def _entry_seconds(entry_id: bytes) -> int:
    """An entry's time (its id's milliseconds, Redis's clock) in whole seconds: the same on every replay."""
    return int(entry_id.partition(b"-")[0]) // 1000


class ResponsesFraming:
    """`api.sse.Framing` for `/v1/responses` streams: `event:` equal to the JSON `type`, no `id:` or `retry:` lines
    (openai-python raises on any later blank line once it has seen an `id:`), ended after the terminal event."""

    def __init__(self, events: ResponseEvents) -> None:
        self.events = events

    def opening(self) -> bytes:
        return self.events.opening()

    def frame(self, entry: RawEntry) -> tuple[bytes, bool]:
        return self.events.feed(entry), self.events.ended

    def outage(self) -> bytes:
        # Not a stored event: it carries the last sequence number sent, and a client resumes after it later.
        last = self.events.seq - 1
        message = f"the event store is unreachable; resume with starting_after={last} later"
        nested = {"type": "server_error", "code": "server_error", "message": message, "param": None}
        body = {"type": "error", "sequence_number": last, "code": "server_error", "message": message}
        return b"event: error\ndata: " + orjson.dumps({**body, "param": None, "error": nested}) + b"\n\n"
