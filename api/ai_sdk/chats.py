"""Which stream is an AI SDK chat's active one: a small hash per owner and chat id (`Keys.chat`), in Redis so that
every API replica answers the resume of a chat that another one started.

The AI SDK's resume names only the chat (`GET {api}/{chatId}/stream`), never a stream or an offset, so the chat's
latest answer is remembered here with the UI message id its `start` chunk carries on every replay. A chat id is
the client's choice: keyed by owner, the same id used by two owners is two chats. An answer that continues a
message (after tool results) keeps that message's parts as they were sent (`recap`, JSON), for its replays.
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from contract.keys import Keys


@dataclass(frozen=True, slots=True)
class ActiveStream:
    stream_id: str
    message_id: str
    recap: bytes | None = None  # the continued message's parts (JSON), when the answer continues one


async def activate(redis: "Redis", keys: Keys, owner: str, chat_id: str, active: ActiveStream, ttl: int) -> str | None:
    """Make `active` the chat's stream (for `ttl` seconds, the stream's own lifetime); returns the stream it
    replaces, read in the same transaction, so that of two concurrent answers for one chat each sees the other."""
    key = keys.chat(owner, chat_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hget(key, "stream")
        pipe.hset(key, mapping={"stream": active.stream_id, "message": active.message_id})
        if active.recap is None:
            pipe.hdel(key, "recap")
        else:
            pipe.hset(key, mapping={"recap": active.recap})
        pipe.expire(key, ttl)
        previous = (await pipe.execute())[0]
    return previous.decode() if previous else None


async def active_stream(redis: "Redis", keys: Keys, owner: str, chat_id: str) -> ActiveStream | None:
    fields = ["stream", "message", "recap"]
    stream_id, message_id, recap = await redis.hmget(keys.chat(owner, chat_id), fields)  # type: ignore[misc]
    if not stream_id or not message_id:
        return None
    return ActiveStream(stream_id.decode(), message_id.decode(), recap)
