"""Stored entries into Chat Completions: `chat.completion.chunk` frames for `stream: true`, and the
`chat.completion` object otherwise.

The stream is `data:` lines only, as OpenAI sends it (openai-python before 1.97.2 mis-parses any `event:` line
there), and ends with `data: [DONE]`. Chunks carry what the upstream streamed, kind by kind: `content`, the
reasoning under the delta field the upstream used (`reasoning_content` or `reasoning`, recorded on the stored
stream), `refusal`, and `tool_calls` fragments (`id`, `type` and `function.name` on a call's first fragment
only, `index` on every one). With `stream_options.include_usage` a last chunk with `choices: []` holds the usage.

Failures end the stream with an `error` object, which both SDKs raise as `APIError`: an upstream error, a
cancel, and a retried attempt (`reset`) after the first fragment (a chunk stream cannot take text back; before
any fragment a retry is invisible).
"""

from typing import Any

import orjson

from contract.store import RawEntry

DEFAULT_REASONING_FIELD = "reasoning_content"
DONE = b"data: [DONE]\n\n"


def completion_id(stream_id: str) -> str:
    return f"chatcmpl-{stream_id}"


class ChatChunks:
    """The chunk stream of one stream's entries, from the first one on (`api.sse.Framing`)."""

    def __init__(self, stream_id: str, created: int, model: str, include_usage: bool) -> None:
        self._envelope = {
            "id": completion_id(stream_id),
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self.include_usage = include_usage
        self.reasoning_field = DEFAULT_REASONING_FIELD
        self.said = False  # a fragment went out
        self.ended = False

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + orjson.dumps({**self._envelope, "choices": [choice]}) + b"\n\n"

    def opening(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def frame(self, entry: RawEntry) -> tuple[bytes, bool]:
        if self.ended:
            return b"", True
        fields = entry[1]
        kind = fields[b"t"]
        payload: dict[str, Any] = orjson.loads(fields[b"d"])
        out = b""
        if kind == b"delta":
            out = self._chunk({"content": payload["text"]})
        elif kind == b"reasoning":
            self.reasoning_field = payload.get("field") or self.reasoning_field
            out = self._chunk({self.reasoning_field: payload["text"]})
        elif kind == b"refusal":
            out = self._chunk({"refusal": payload["text"]})
        elif kind == b"tool_call":
            call: dict[str, Any] = {"index": payload["index"]}
            function: dict[str, Any] = {}
            if payload.get("id") is not None:
                call["id"] = payload["id"]
                call["type"] = "function"
            if payload.get("name") is not None:
                function["name"] = payload["name"]
            function["arguments"] = payload.get("arguments") or ""
            call["function"] = function
            out = self._chunk({"tool_calls": [call]})
        elif kind == b"done":
            self.ended = True
            out = self._chunk({}, payload.get("finish_reason") or "stop")
            if self.include_usage:
                usage = payload.get("usage")
                out += b"data: " + orjson.dumps({**self._envelope, "choices": [], "usage": usage}) + b"\n\n"
            out += DONE
        elif kind == b"error":
            out = error_frame(str(payload.get("code") or "internal_error"), str(payload.get("message") or ""))
        elif kind == b"cancelled":
            out = error_frame("cancelled", "the answer was cancelled")
        elif kind == b"reset" and self.said:
            out = error_frame("retried", RETRIED)
        if kind in (b"delta", b"reasoning", b"refusal", b"tool_call"):
            self.said = True
        elif kind in (b"error", b"cancelled") or (kind == b"reset" and self.said):
            self.ended = True
        return out, self.ended

    def outage(self) -> bytes:
        return error_frame("redis_unavailable", "the event store is unreachable; the answer goes on in the background")


RETRIED = (
    "the answer was interrupted after it had begun (its worker was lost) and is being generated again; "
    "read the whole retried answer with GET /api/streams/{id}/message"
)


def error_frame(code: str, message: str) -> bytes:
    error = {"message": f"{code}: {message}", "type": "server_error", "param": None, "code": code}
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


def completion(
    stream_id: str, created: int, model: str, message: dict[str, Any], finish_reason: str | None, usage: Any
) -> dict[str, Any]:
    """The `chat.completion` object of a finished answer (`message` in Chat Completions' shape)."""
    return {
        "id": completion_id(stream_id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason or "stop"}],
        "usage": usage,
    }


def message_json(message: dict[str, Any], reasoning_field: str) -> dict[str, Any]:
    """`contract.message.AssistantMessage` as dumped, with the reasoning under the upstream's field name and the
    fields OpenAI always sends (`content`, `refusal`) kept even when null."""
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content"), "refusal": message.get("refusal")}
    if message.get("reasoning") is not None:
        out[reasoning_field] = message["reasoning"]
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return out


def reasoning_field(entries: list[RawEntry]) -> str:
    """The delta field the upstream streamed reasoning in, as the stream recorded it (its last attempt's)."""
    field = DEFAULT_REASONING_FIELD
    for _entry_id, fields in entries:
        if fields[b"t"] == b"reasoning" and b'"field"' in fields[b"d"]:
            field = orjson.loads(fields[b"d"]).get("field") or field
    return field
