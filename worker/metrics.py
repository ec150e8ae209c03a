"""The worker process's Prometheus metrics, served on its own port (`CHATRELAY_WORKER_METRICS_PORT`).

Each worker serves its own: with `--scale worker=N`, scrape every replica (Prometheus DNS discovery of the
service name) and sum over instances.
"""

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("chatrelay.worker")

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)

JOBS_RUNNING = Gauge("chatrelay_jobs_running", "Generations this worker is running now.")
QUEUE_WAIT = Histogram(
    "chatrelay_queue_wait_seconds",
    "From the request being accepted to a worker beginning its first attempt.",
    buckets=_LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "chatrelay_time_to_first_token_seconds",
    "From a worker beginning an attempt to the model's first content token (add the queue wait for what the "
    "user waits).",
    buckets=_LATENCY_BUCKETS,
)
TOKENS_PER_SECOND = Histogram(
    "chatrelay_tokens_per_second",
    "Completion tokens per second of finished answers, from the first token to the last (the model's usage "
    "count when it reports one, else content chunks).",
    buckets=(1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 500, 1000, 5000),
)
GENERATION_DURATION = Histogram(
    "chatrelay_generation_duration_seconds",
    "Whole attempts, from begin to the terminal event, by outcome: done, error, cancelled, fenced.",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900),
)
UPSTREAM_ERRORS = Counter(
    "chatrelay_upstream_errors",
    "Answers that ended with an error, by error code (rate_limited, upstream_http_error, upstream_timeout, ...).",
    ["code"],
)
CANCELS = Counter("chatrelay_cancels", "Running generations stopped by a cancel request.")
CANCEL_LATENCY = Histogram(
    "chatrelay_cancel_latency_seconds",
    "From the cancel request (its time in Redis) to the upstream request being closed.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
APPEND_BATCH_SIZE = Histogram(
    "chatrelay_append_batch_size",
    "Stream appends sent per Redis round trip (one pipeline of append scripts, `worker.append_batcher`): the "
    "count is round trips, the sum appends.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


def serve(port: int) -> None:
    """Serve this process's metrics on `port` (0: not at all). A port in use is logged, not fatal: the
    worker is more useful generating without metrics than not running (two workers on one host)."""
    if port == 0:
        return
    try:
        start_http_server(port)
    except OSError as exc:
        log.error("worker metrics not served: port %d: %s", port, exc)
        return
    log.info("worker metrics on :%d/metrics", port)
