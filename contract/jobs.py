"""The generation job as it travels through arq: its name and its JSON serialization.

The job carries only the stream id; the request lives in Redis (`Keys.request`). Payloads are JSON, never
pickle: with arq's default pickle, anyone who can write to Redis could run code on the workers.
"""

from typing import Any

import orjson

GENERATE_JOB = "generate_stream"


def serialize_job(job: dict[str, Any]) -> bytes:
    # `default=repr`: arq stores a failed job's exception in its result; keep that readable, not fatal.
    return orjson.dumps(job, default=repr)


def deserialize_job(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(data)
    return result
