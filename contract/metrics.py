"""Prometheus metrics that the API and the worker both record (each process serves its own registry).

Counters are per process: sum them over every API process and worker in PromQL. The API's metrics are in
`api.metrics`, the worker's in `worker.metrics`; the README lists them all.
"""

from prometheus_client import Counter

# Both the API processes and the workers run a lease monitor; whichever notices a lost lease first takes it over.
LEASE_TAKEOVERS = Counter(
    "chatrelay_lease_takeovers",
    "Running streams whose worker was lost (lease not renewed), by what this process did: retry (a new "
    "attempt was queued), lost (error worker_lost past the last attempt), cancelled (a cancel was pending).",
    ["outcome"],
)
REDIS_ERRORS = Counter(
    "chatrelay_redis_errors",
    "Redis commands that failed after the client's own retries, by the component that issued them.",
    ["component"],
)
