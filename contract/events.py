"""The event model: what a stream holds, what SSE carries, what the CLI prints.

Each event is one Redis stream entry with two fields, `t` (the type) and `d` (the payload as one line of
JSON), and one SSE event (`id:` entry id, `event:` type, `data:` payload). The payload is encoded once, by
the worker, and relayed as stored: the API never re-encodes it (that keeps the per-token path cheap).

An answer is everything the model said after the last `reset`: the `delta` texts (its content), the
`reasoning` texts, the `refusal` texts and the `tool_call` fragments, each concatenated in order of arrival
(`contract.message` assembles them). Consecutive fragments of one kind (and one tool call) may be merged into
one event; events of different kinds are never reordered.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class EventType(StrEnum):
    START = "start"
    DELTA = "delta"
    REASONING = "reasoning"
    TOOL_CALL = "tool_call"
    REFUSAL = "refusal"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESET = "reset"


TERMINAL_TYPES = frozenset({EventType.DONE, EventType.ERROR, EventType.CANCELLED})
TERMINAL_TYPE_BYTES = frozenset(t.value.encode() for t in TERMINAL_TYPES)
# The kinds of an answer's text: what the worker writes between `start` and the terminal event.
FRAGMENT_TYPES = frozenset({EventType.DELTA, EventType.REASONING, EventType.TOOL_CALL, EventType.REFUSAL})


class Usage(BaseModel):
    """Token counts as the upstream reported them. Details the upstream adds (`prompt_tokens_details.
    cached_tokens`, `completion_tokens_details.reasoning_tokens`, a provider's own fields) are kept as sent."""

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class StartEvent(BaseModel):
    type: Literal[EventType.START] = EventType.START
    attempt: int
    model: str


class DeltaEvent(BaseModel):
    """Answer text (the upstream's `delta.content`)."""

    type: Literal[EventType.DELTA] = EventType.DELTA
    text: str


class ReasoningEvent(BaseModel):
    """Reasoning text (the upstream's `delta.reasoning_content` or `delta.reasoning`, or Mistral's `thinking`).
    The first reasoning event of an attempt names the delta field it came in (`field`), so a surface that relays
    Chat Completions chunks can use the upstream's own name; later ones leave it out."""

    type: Literal[EventType.REASONING] = EventType.REASONING
    text: str
    field: str | None = None


class ToolCallEvent(BaseModel):
    """A fragment of tool call number `index`: its first fragment carries `id` and `name`; the call's
    arguments are the concatenation of its fragments' `arguments`."""

    type: Literal[EventType.TOOL_CALL] = EventType.TOOL_CALL
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class RefusalEvent(BaseModel):
    type: Literal[EventType.REFUSAL] = EventType.REFUSAL
    text: str


class DoneEvent(BaseModel):
    type: Literal[EventType.DONE] = EventType.DONE
    finish_reason: str | None = Field(description="`stop`, `length`, `tool_calls`, `content_filter`, ...")
    usage: Usage | None


class ErrorEvent(BaseModel):
    type: Literal[EventType.ERROR] = EventType.ERROR
    code: str
    message: str


class CancelledEvent(BaseModel):
    type: Literal[EventType.CANCELLED] = EventType.CANCELLED
    chars: int = Field(description="Characters of the kept partial answer, of every kind (code points).")
    usage: Usage | None = Field(default=None, description="Usage as the upstream reported it, if it did.")
    upstream_chunks: int = Field(
        default=0,
        description="Content chunks received before the upstream request was closed: about the completion tokens "
        "so far, since an upstream reports exact usage only when an answer ends.",
    )


class ResetEvent(BaseModel):
    type: Literal[EventType.RESET] = EventType.RESET
    attempt: int


Event = Annotated[
    StartEvent
    | DeltaEvent
    | ReasoningEvent
    | ToolCallEvent
    | RefusalEvent
    | DoneEvent
    | ErrorEvent
    | CancelledEvent
    | ResetEvent,
    Field(discriminator="type"),
]
_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def encode_event(event: BaseModel) -> tuple[bytes, bytes]:
    """The `(t, d)` fields of the stream entry for an event: its type and its payload without the type."""
    payload: dict[str, Any] = event.model_dump(mode="json")
    event_type: str = payload.pop("type")
    return event_type.encode(), orjson.dumps(payload)


def encode_text(event_type: bytes, text: str) -> tuple[bytes, bytes]:
    """Fast path of `encode_event` for the per-token kinds that carry only `text` (delta, reasoning, refusal)."""
    return event_type, orjson.dumps({"text": text})


def encode_reasoning(text: str, field: str | None) -> tuple[bytes, bytes]:
    """Fast path of `encode_event(ReasoningEvent(...))`: `field` only where the event names it."""
    if field is None:
        return b"reasoning", orjson.dumps({"text": text})
    return b"reasoning", orjson.dumps({"text": text, "field": field})


def encode_delta(text: str) -> tuple[bytes, bytes]:
    """Fast path of `encode_event(DeltaEvent(text=...))` for the per-token hot path."""
    return b"delta", orjson.dumps({"text": text})


def encode_tool_call(index: int, call_id: str | None, name: str | None, arguments: str) -> tuple[bytes, bytes]:
    """Fast path of `encode_event(ToolCallEvent(...))`: `id` and `name` only where the fragment has them."""
    payload: dict[str, Any] = {"index": index}
    if call_id is not None:
        payload["id"] = call_id
    if name is not None:
        payload["name"] = name
    payload["arguments"] = arguments
    return b"tool_call", orjson.dumps(payload)


def decode_event(event_type: bytes | str, data: bytes | str) -> Event:
    """Parse a stored `(t, d)` pair back into its typed event."""
    payload = orjson.loads(data)
    payload["type"] = event_type.decode() if isinstance(event_type, bytes) else event_type
    return _event_adapter.validate_python(payload)
