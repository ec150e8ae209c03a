"""The generation queue: arq, with JSON job payloads, under our key prefix."""

from arq.connections import ArqRedis
from arq.constants import expires_extra_ms
from redis.asyncio import Redis

from contract.jobs import GENERATE_JOB, deserialize_job, serialize_job
from contract.keys import Keys


def job_queue(redis: "Redis", keys: Keys) -> ArqRedis:
    """An arq client sharing `redis`'s connection pool; only its job serialization differs."""
    return ArqRedis(
        connection_pool=redis.connection_pool,
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
        default_queue_name=keys.queue,
    )


def job_id(stream_id: str, attempt: int) -> str:
    """The first attempt's job id is the stream id; a retry gets its own, since arq keeps a finished or dead
    job's id reserved until its result expires."""
    return stream_id if attempt == 1 else f"{stream_id}:attempt-{attempt}"


def first_job(stream_id: str, enqueued_at_ms: int) -> bytes:
    """The payload arq's `enqueue_job` would store for a stream's first attempt (`arq.jobs.serialize_job`'s
    fields, in our JSON serialization): for `StreamStore.create_and_enqueue`, which writes the job itself."""
    return serialize_job({"t": None, "f": GENERATE_JOB, "a": [stream_id, 1], "k": {}, "et": enqueued_at_ms})


# arq's default expiry of a job that has not started: a day past its score (`arq.constants.expires_extra_ms`).
JOB_EXPIRES_MS = expires_extra_ms


async def enqueue_generation(queue: ArqRedis, keys: Keys, stream_id: str, attempt: int) -> None:
    await queue.enqueue_job(
        GENERATE_JOB, stream_id, attempt, _job_id=job_id(stream_id, attempt), _queue_name=keys.queue
    )
    # Workers take the job now instead of at their next poll (`worker.wake`); the poll stays as the safety net.
    await queue.publish(keys.queue_wake, b"1")
