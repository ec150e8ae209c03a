"""What a `/v1/responses` response keeps beside its stream: the request's echoed fields and its input items
(`Keys.response`). Its output is never stored here: it is the stream's events, read through `responses_events`.
A response's conversation (for `previous_response_id`) is the stream's stored request, less the instructions,
plus that output."""

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from contract.keys import Keys


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    echo: dict[str, Any]  # `responses_request.echo_fields`
    input: list[dict[str, Any]]  # `responses_request.input_items`
    instructions: bool  # the stored request's first message is the instructions

    def json(self) -> bytes:
        return orjson.dumps({"echo": self.echo, "input": self.input, "instructions": self.instructions})


async def save(redis: "Redis", keys: Keys, stream_id: str, record: ResponseRecord, ttl_seconds: int) -> None:
    await redis.set(keys.response(stream_id), record.json(), ex=ttl_seconds)


async def load(redis: "Redis", keys: Keys, stream_id: str) -> ResponseRecord | None:
    raw = await redis.get(keys.response(stream_id))
    if raw is None:
        return None
    data = orjson.loads(raw)
    return ResponseRecord(echo=data["echo"], input=data["input"], instructions=bool(data["instructions"]))
