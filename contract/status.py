"""A stream's status and metadata: the `meta` hash and its typed view (what `GET /api/streams/{id}` shows)."""

from datetime import UTC, datetime
from enum import StrEnum

import orjson
from pydantic import BaseModel, Field

from contract.events import Usage


class StreamStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({StreamStatus.DONE, StreamStatus.ERROR, StreamStatus.CANCELLED})


class StreamError(BaseModel):
    code: str
    message: str


class StreamInfo(BaseModel):
    """Status JSON of one stream, decoded from its meta hash."""

    id: str
    status: StreamStatus
    model: str
    demo: bool = False
    attempt: int = 0
    created_at: datetime
    started_at: datetime | None = None
    first_token_at: datetime | None = None
    finished_at: datetime | None = None
    chars: int = Field(default=0, description="Characters of the current attempt's answer, of every kind.")
    text_chars: int = Field(default=0, description="Of those, answer text (content).")
    reasoning_chars: int = 0
    refusal_chars: int = 0
    tool_calls: int = Field(default=0, description="Tool calls the answer has started.")
    finish_reason: str | None = None
    usage: Usage | None = None
    error: StreamError | None = None
    worker: str | None = None
    owner: str | None = None


def _time(raw: bytes | None) -> datetime | None:
    return None if raw is None else datetime.fromtimestamp(int(raw) / 1000, UTC)


def decode_meta(stream_id: str, meta: dict[bytes, bytes]) -> StreamInfo:
    """The typed view of a meta hash as returned by `HGETALL` (bytes keys and values)."""
    created_at = _time(meta.get(b"created_at"))
    usage = meta.get(b"usage")
    error = meta.get(b"error")
    worker = meta.get(b"worker")
    finish_reason = meta.get(b"finish_reason")
    chars, reasoning, refusal, tool = (
        int(meta.get(name, b"0")) for name in (b"chars", b"reasoning_chars", b"refusal_chars", b"tool_chars")
    )
    return StreamInfo(
        id=stream_id,
        status=StreamStatus(meta[b"status"].decode()),
        model=meta.get(b"model", b"").decode(),
        demo=meta.get(b"demo") == b"1",
        attempt=int(meta.get(b"attempt", b"0")),
        created_at=created_at or datetime.fromtimestamp(0, UTC),
        started_at=_time(meta.get(b"started_at")),
        first_token_at=_time(meta.get(b"first_token_at")),
        finished_at=_time(meta.get(b"finished_at")),
        chars=chars,
        text_chars=max(0, chars - reasoning - refusal - tool),
        reasoning_chars=reasoning,
        refusal_chars=refusal,
        tool_calls=int(meta.get(b"tool_calls", b"0")),
        finish_reason=finish_reason.decode() if finish_reason else None,
        usage=Usage.model_validate(orjson.loads(usage)) if usage and usage != b"null" else None,
        error=StreamError.model_validate(orjson.loads(error)) if error else None,
        worker=worker.decode() if worker else None,
        owner=meta[b"owner"].decode() if meta.get(b"owner") else None,
    )
