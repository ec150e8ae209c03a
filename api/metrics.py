"""The API process's Prometheus metrics (served by `api.routes.metrics`).

Every API replica serves its own counters: scrape each replica directly (not through the proxy, which hides
`/metrics`) and sum over instances. Queue depth and streams by status are read from Redis at scrape time, so
every replica reports the same values: aggregate those with `max`, not `sum`.

The hot paths (the hub's reader, the SSE relay) only increment pre-labelled children, once per batch.
"""

import time

from prometheus_client import Counter, Gauge, Histogram

from contract.metrics import REDIS_ERRORS

QUEUE_DEPTH = Gauge("chatrelay_queue_depth", "Generation jobs waiting in the queue for a worker (read at scrape).")
STREAMS = Gauge("chatrelay_streams", "Streams queued or running now, by status (read at scrape).", ["status"])
SSE_CONNECTIONS = Gauge("chatrelay_sse_connections", "SSE responses open on this process.")
SSE_RESUMES = Counter("chatrelay_sse_resumes", "SSE responses that resumed after an offset (Last-Event-ID, ?offset=).")
SSE_EVENTS = Counter(
    "chatrelay_sse_events",
    "Stored events sent over SSE, by source: replay (read from storage after the client's offset), live (sent by "
    "the connection's task) or direct (live, written by the shared reader straight to a waiting connection).",
    ["source"],
)
SSE_ENDED = Counter(
    "chatrelay_sse_ended",
    "SSE responses ended, by reason: terminal event, closed (client gone), lifetime (maximum reached), "
    "overflow (reader too slow), redis_unavailable.",
    ["reason"],
)
HUB_LAG = Histogram(
    "chatrelay_hub_lag_seconds",
    "Time from an entry's creation (its Redis id) to this process's reader fanning it out: the oldest entry of "
    "each stream in each read. Includes any clock offset between Redis and this host.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CANCEL_REQUESTS = Counter(
    "chatrelay_cancel_requests",
    "Cancel requests answered, by result: cancelled (it was queued), requested (the worker stops it), or the "
    "status it had already ended with.",
    ["result"],
)
HTTP_DURATION = Histogram(
    "chatrelay_http_request_duration_seconds",
    "HTTP request duration by method, route template and status; SSE event responses are not included.",
    ["method", "route", "status"],
)

SSE_REPLAYED = SSE_EVENTS.labels("replay")
SSE_LIVE = SSE_EVENTS.labels("live")
SSE_DIRECT = SSE_EVENTS.labels("direct")
REDIS_ERRORS_HUB = REDIS_ERRORS.labels("hub")


def observe_request(method: str, route: str, status: int, started: float) -> None:
    HTTP_DURATION.labels(method, route, str(status)).observe(time.perf_counter() - started)
