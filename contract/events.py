"""The event model: what a stream holds, what SSE carries, what the CLI prints.

Each event is one Redis stream entry with two fields, `t` (the type) and `d` (the payload as one line of
JSON), and one SSE event (`id:` entry id, `event:` type, `data:` payload). The payload is encoded once, by
the worker, and relayed as stored: the API never re-encodes it (that keeps the per-token path cheap).
The answer is the concatenation of the `delta` texts after the last `reset`.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field, TypeAdapter


class EventType(StrEnum):
    START = "start"
    DELTA = "delta"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESET = "reset"


TERMINAL_TYPES = frozenset({EventType.DONE, EventType.ERROR, EventType.CANCELLED})
TERMINAL_TYPE_BYTES = frozenset(t.value.encode() for t in TERMINAL_TYPES)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class StartEvent(BaseModel):
    type: Literal[EventType.START] = EventType.START
    attempt: int
    model: str


class DeltaEvent(BaseModel):
    type: Literal[EventType.DELTA] = EventType.DELTA
    text: str


class DoneEvent(BaseModel):
    type: Literal[EventType.DONE] = EventType.DONE
    finish_reason: str | None
    usage: Usage | None


class ErrorEvent(BaseModel):
    type: Literal[EventType.ERROR] = EventType.ERROR
    code: str
    message: str


class CancelledEvent(BaseModel):
    type: Literal[EventType.CANCELLED] = EventType.CANCELLED
    chars: int = Field(description="Length of the kept partial answer, in characters (code points).")
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
    StartEvent | DeltaEvent | DoneEvent | ErrorEvent | CancelledEvent | ResetEvent, Field(discriminator="type")
]
_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def encode_event(event: BaseModel) -> tuple[bytes, bytes]:
    """The `(t, d)` fields of the stream entry for an event: its type and its payload without the type."""
    payload: dict[str, Any] = event.model_dump(mode="json")
    event_type: str = payload.pop("type")
    return event_type.encode(), orjson.dumps(payload)


def encode_delta(text: str) -> tuple[bytes, bytes]:
    """Fast path of `encode_event(DeltaEvent(text=...))` for the per-token hot path."""
    return b"delta", orjson.dumps({"text": text})


def decode_event(event_type: bytes | str, data: bytes | str) -> Event:
    """Parse a stored `(t, d)` pair back into its typed event."""
    payload = orjson.loads(data)
    payload["type"] = event_type.decode() if isinstance(event_type, bytes) else event_type
    return _event_adapter.validate_python(payload)
