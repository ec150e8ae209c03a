"""Listing streams with filters and paging: one query for `GET /api/streams` and `chatrelay streams`.

Streams are listed newest first from a creation-time index (`Keys.active` for queued and running ones,
`Keys.recent` for everything within the TTL). Paging is by cursor, `<created_at ms>:<stream id>`: ids that share
a millisecond sort by id (Redis orders equal scores by member), so a page boundary never skips or repeats one.
Filters other than age are checked against each meta hash, so one page reads at most `scan_max` index entries;
when it stops there it still returns a cursor, and the next page goes on from where the scan stopped.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from redis.asyncio import Redis

from contract.keys import Keys
from contract.status import StreamInfo, StreamStatus, decode_meta

_BATCH = 200


class StatusFilter(StrEnum):
    """A stream status, or `active` (queued and running) or `all`."""

    ACTIVE = "active"
    ALL = "all"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


class BadCursorError(ValueError):
    """A paging cursor that is not `<ms>` or `<ms>:<stream id>`."""


@dataclass(frozen=True, slots=True)
class StreamQuery:
    status: StatusFilter = StatusFilter.ACTIVE
    model: str | None = None
    # Only streams created at or after this time (ms since epoch): the age filter.
    created_after_ms: int | None = None
    # A `next_cursor` from the previous page: only streams created before it.
    cursor: str | None = None
    limit: int = 50
    # When set, only streams whose meta `owner` is this (issue 4); None lists everyone's.
    owner: str | None = None
    scan_max: int = 5000


@dataclass(slots=True)
class StreamPage:
    streams: list[StreamInfo] = field(default_factory=list)
    next_cursor: str | None = None


def parse_cursor(cursor: str) -> tuple[int, bytes | None]:
    ms, _, sid = cursor.partition(":")
    if not ms.isdigit() or len(ms) > 15:
        raise BadCursorError(f"cursor {cursor[:64]!r} is not <ms>:<stream id>; use a next_cursor as it was given")
    return int(ms), sid.encode() if sid else None


def _matches(query: StreamQuery, info: StreamInfo, meta: dict[bytes, bytes]) -> bool:
    if query.status not in (StatusFilter.ACTIVE, StatusFilter.ALL) and info.status != StreamStatus(query.status):
        return False
    if query.status == StatusFilter.ACTIVE and info.status not in (StreamStatus.QUEUED, StreamStatus.RUNNING):
        return False
    if query.model is not None and info.model != query.model:
        return False
    return query.owner is None or meta.get(b"owner", b"").decode() == query.owner


async def list_streams(redis: "Redis", keys: Keys, query: StreamQuery) -> StreamPage:
    """One page of streams matching `query`, newest first, with the cursor of the next page (None at the end)."""
    active = query.status in (StatusFilter.ACTIVE, StatusFilter.QUEUED, StatusFilter.RUNNING)
    index = keys.active if active else keys.recent
    min_score = str(query.created_after_ms) if query.created_after_ms is not None else "-inf"
    # The scan position (keyset, not offsets: streams enter and leave the index while we page through it).
    pos_ms: int | None = None
    pos_id: bytes | None = None  # within pos_ms, only ids sorting before this one; None: all of pos_ms excluded
    if query.cursor:
        pos_ms, pos_id = parse_cursor(query.cursor)

    page = StreamPage()
    scanned = 0
    skip = 0  # entries at pos_ms already passed (only when more than a batch share one millisecond)
    while scanned < query.scan_max:
        max_score = "+inf" if pos_ms is None else str(pos_ms) if pos_id is not None else f"({pos_ms}"
        raw: list[tuple[bytes, float]] = await redis.zrevrangebyscore(
            index, max_score, min_score, start=skip, num=_BATCH, withscores=True
        )
        if not raw:
            return page  # the index is exhausted: no next page
        # Equal scores come in reverse id order: drop the position's own id and those sorting after it.
        batch = [(sid, int(score)) for sid, score in raw if pos_id is None or int(score) != pos_ms or sid < pos_id]
        if not batch:
            skip += len(raw)
            continue
        skip = 0
        batch = batch[: query.scan_max - scanned]
        scanned += len(batch)
        async with redis.pipeline(transaction=False) as pipe:
            for sid, _ms in batch:
                pipe.hgetall(keys.meta(sid.decode()))
            metas: list[dict[bytes, bytes]] = await pipe.execute()
        for (sid, ms), meta in zip(batch, metas, strict=True):
            pos_ms, pos_id = ms, sid
            if not meta:
                continue  # expired after the index read
            info = decode_meta(sid.decode(), meta)
            if _matches(query, info, meta):
                page.streams.append(info)
                if len(page.streams) == query.limit:
                    break
        if len(page.streams) == query.limit:
            break
    if pos_ms is not None and pos_id is not None:
        page.next_cursor = f"{pos_ms}:{pos_id.decode()}"
    return page


def created_after_ms(max_age_seconds: float | None = None, created_after: datetime | None = None) -> int | None:
    """The age filter as a creation-time floor (ms since epoch); the later of the two bounds wins."""
    floors: list[int] = []
    if max_age_seconds is not None:
        # An age past the epoch means no floor; clamping also keeps a huge age from overflowing the int.
        floors.append(int(max(0.0, time.time() - max_age_seconds) * 1000))
    if created_after is not None:
        aware = created_after if created_after.tzinfo else created_after.replace(tzinfo=UTC)
        floors.append(int(aware.timestamp() * 1000))
    return max(floors) if floors else None
