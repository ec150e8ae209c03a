"""Request and response bodies of the HTTP API (the chat request itself is `contract.chat_request`)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.status import StreamInfo, StreamStatus


class StreamCreated(BaseModel):
    id: str
    status: Literal[StreamStatus.QUEUED] = StreamStatus.QUEUED
    events_url: str
    status_url: str


class CancelAccepted(BaseModel):
    id: str
    status: str = Field(description="`requested` while the worker stops, else the stream's final status.")


class StreamList(BaseModel):
    streams: list[StreamInfo]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null at the end.")


class ShareLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(
        default=None, ge=1, description="How long the link works; the server's default and maximum apply."
    )


class ShareLink(BaseModel):
    id: str
    token: str = Field(description="Read-only access to this stream; pass it as `?token=`.")
    expires_at: datetime
    status_url: str
    events_url: str
