"""Stream ids (128 random bits, URL-safe) and Redis stream entry ids (the SSE offsets)."""

import re
import secrets

_STREAM_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_MAX_U64 = 2**64 - 1


def new_stream_id() -> str:
    """128 random bits as 22 URL-safe base64 characters; also the arq job id."""
    return secrets.token_urlsafe(16)


def is_stream_id(value: str) -> bool:
    return _STREAM_ID.fullmatch(value) is not None


EntryId = tuple[int, int]


def parse_entry_id(value: str) -> EntryId | None:
    """`<ms>-<seq>` as a comparable tuple, or None when it is not a valid Redis stream entry id."""
    match = _ENTRY_ID.fullmatch(value)
    if match is None:
        return None
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms > _MAX_U64 or seq > _MAX_U64:
        return None
    return ms, seq
