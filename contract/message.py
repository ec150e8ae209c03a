"""The assistant message a stream holds: its events after the last `reset`, assembled.

What `GET /api/streams/{id}/message` returns, what the CLI prints, and what every surface that answers with a
whole message builds on. Pure and incremental: feed entries in stream order with `add`, read `message()`.
"""

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import BaseModel, Field

from contract.events import EventType, Usage


class ToolCallFunction(BaseModel):
    name: str
    arguments: str


class ToolCall(BaseModel):
    id: str
    type: str = "function"
    function: ToolCallFunction


class AssistantMessage(BaseModel):
    """The answer in Chat Completions' message shape (`content`, `refusal`, `tool_calls`), with the reasoning
    under the name the OpenAI-compatible servers use for it."""

    role: str = "assistant"
    content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class MessageBuilder:
    """Assembles the answer from stored entries; a `reset` starts it over (the retried attempt's answer)."""

    def __init__(self) -> None:
        self._reset()
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.error: dict[str, Any] | None = None
        self.ended: str | None = None  # the terminal event's type, once read

    def _reset(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, _Call] = {}
        self.attempt = 1

    def add(self, event_type: bytes | str, data: bytes | str) -> None:
        kind = event_type.decode() if isinstance(event_type, bytes) else event_type
        payload: dict[str, Any] = orjson.loads(data)
        if kind == EventType.DELTA:
            self._content.append(payload["text"])
        elif kind == EventType.REASONING:
            self._reasoning.append(payload["text"])
        elif kind == EventType.REFUSAL:
            self._refusal.append(payload["text"])
        elif kind == EventType.TOOL_CALL:
            call = self._calls.setdefault(int(payload["index"]), _Call())
            call.id = payload.get("id") or call.id
            call.name = payload.get("name") or call.name
            call.arguments.append(payload.get("arguments") or "")
        elif kind == EventType.RESET:
            self._reset()
            self.attempt = int(payload["attempt"])
        elif kind == EventType.DONE:
            self.ended, self.finish_reason = kind, payload.get("finish_reason")
            self.usage = Usage.model_validate(payload["usage"]) if payload.get("usage") else None
        elif kind == EventType.CANCELLED:
            self.ended = kind
            self.usage = Usage.model_validate(payload["usage"]) if payload.get("usage") else None
        elif kind == EventType.ERROR:
            self.ended, self.error = kind, payload

    def add_all(self, entries: Iterable[tuple[bytes, dict[bytes, bytes]]]) -> "MessageBuilder":
        for _entry_id, fields in entries:
            self.add(fields[b"t"], fields[b"d"])
        return self

    def message(self) -> AssistantMessage:
        calls = [
            ToolCall(id=c.id, function=ToolCallFunction(name=c.name, arguments="".join(c.arguments)))
            for _index, c in sorted(self._calls.items())
        ]
        return AssistantMessage(
            content="".join(self._content) if self._content else None,
            reasoning="".join(self._reasoning) if self._reasoning else None,
            refusal="".join(self._refusal) if self._refusal else None,
            tool_calls=calls or None,
        )


class StreamMessage(BaseModel):
    """`GET /api/streams/{id}/message`: the answer so far and where the stream stands."""

    id: str
    status: str
    attempt: int
    finish_reason: str | None = None
    usage: Usage | None = None
    message: AssistantMessage = Field(description="The assistant message after the last reset, so far.")
