"""Every Redis key chatrelay uses, built in this one module.

A stream's own keys share the hash tag `{<id>}` so they can live on one Redis Cluster slot later.
arq's own keys (`arq:job:<id>`, `arq:result:<id>`, `arq:in-progress:<id>`) are fixed by arq; only the queue
name is ours.
"""

from dataclasses import dataclass

# arq's fixed key prefixes (`arq.constants.job_key_prefix`, `result_key_prefix`), spelled out rather than
# imported: the contract runs where arq is not loaded (the command line, the API's hot path), and
# tests/test_enqueue_format.py checks them against the installed arq.
ARQ_JOB_PREFIX = "arq:job:"
ARQ_RESULT_PREFIX = "arq:result:"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key schema under one prefix (the `CHATRELAY_KEY_PREFIX` setting)."""

    prefix: str

    def events(self, stream_id: str) -> str:
        """Redis stream of the events of one answer."""
        return f"{self.prefix}:{{{stream_id}}}:events"

    def meta(self, stream_id: str) -> str:
        """Hash with the status, timings, counters and error of one answer."""
        return f"{self.prefix}:{{{stream_id}}}:meta"

    def request(self, stream_id: str) -> str:
        """JSON of the chat request (messages and options) the worker generates from."""
        return f"{self.prefix}:{{{stream_id}}}:request"

    def response(self, stream_id: str) -> str:
        """JSON of an OpenAI Responses request made on `/v1` (the fields its Response object echoes, its input
        items); the answer itself is the stream's events."""
        return f"{self.prefix}:{{{stream_id}}}:response"

    def lease(self, stream_id: str) -> str:
        """`<attempt>:<worker>` of the running attempt, expiring unless its worker renews it."""
        return f"{self.prefix}:{{{stream_id}}}:lease"

    @property
    def active(self) -> str:
        """Sorted set of queued and running stream ids, scored by creation time (ms)."""
        return f"{self.prefix}:streams:active"

    @property
    def recent(self) -> str:
        """Sorted set of every stream id, scored by creation time (ms); trimmed past the stream TTL."""
        return f"{self.prefix}:streams:recent"

    @property
    def control(self) -> str:
        """Pub/sub channel on which the API tells workers to cancel a running generation."""
        return f"{self.prefix}:control"

    @property
    def queue_wake(self) -> str:
        """Pub/sub channel on which every enqueue wakes the workers' queue poll at once."""
        return f"{self.prefix}:queue:wake"

    @staticmethod
    def arq_job(job_id: str) -> str:
        """arq's key for a queued job's payload (arq's own prefix, not ours: arq's workers read it there)."""
        return ARQ_JOB_PREFIX + job_id

    @staticmethod
    def arq_result(job_id: str) -> str:
        """arq's key for a finished job's result (while it exists, arq refuses to enqueue the same id)."""
        return ARQ_RESULT_PREFIX + job_id

    @property
    def queue(self) -> str:
        """The arq queue (a sorted set of job ids) the worker takes generations from."""
        return f"{self.prefix}:queue"

    def worker_health(self, host: str) -> str:
        """arq's health-check key of the workers on one host (`arq ... --check` reads it); per host, so a
        container's check fails when its own worker stops, whatever the other replicas do."""
        return f"{self.prefix}:queue:health-check:{host}"

    def owner_active(self, owner: str) -> str:
        """Sorted set of the stream ids an owner created that may still be queued or running (admission quota).
        Finished ids are pruned lazily at the owner's next request."""
        return f"{self.prefix}:owner:{owner}:active"

    def owner_sse(self, owner: str) -> str:
        """Sorted set of an owner's open SSE connections, scored by when each slot lapses on its own (the
        connection's maximum lifetime), so a slot leaked by a crashed API process frees itself."""
        return f"{self.prefix}:owner:{owner}:sse"

    def chat(self, owner: str, chat_id: str) -> str:
        """Hash of an AI SDK chat's active stream (`stream`, the UI `message` id), one per owner and chat id: two
        owners with the same chat id never share it. Lives as long as the stream."""
        return f"{self.prefix}:chat:{owner}:{chat_id}"

    def hub_wake(self, process_id: str) -> str:
        """A tiny stream an API process writes to itself to interrupt its shared blocking XREAD."""
        return f"{self.prefix}:hub:{process_id}:wake"

    def worker(self, worker_id: str) -> str:
        """Hash of one live worker (host, pid, started, job counts); expires unless its heartbeat renews it."""
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def workers(self) -> str:
        """Sorted set of worker ids scored by their last heartbeat (ms); entries whose hash expired are pruned."""
        return f"{self.prefix}:workers"
