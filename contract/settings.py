"""Settings shared by every chatrelay process, read from the environment and `.env`.

Upstream credentials (the OpenAI / Azure keys) are deliberately not here: they live in `worker.upstream`
so the API process never loads them.
"""

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the API, the worker and the CLI agree on."""

    model_config = SettingsConfigDict(env_prefix="CHATRELAY_", env_file=".env", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "CHATRELAY_REDIS_URL")
    )
    # Default model when a request names none; not a secret, so the API can record it at enqueue time.
    openai_model: str = Field(default="gpt-4o-mini", validation_alias=AliasChoices("OPENAI_MODEL"))
    # Models `GET /v1/models` lists besides `openai_model` (comma-separated): what OpenAI clients offer to pick.
    models: str = ""
    key_prefix: str = Field(default="chatrelay", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    stream_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    # Set by `make dev` / `chatrelay dev` when it started the local demo upstream; shown in status JSON.
    demo_upstream: bool = False

    # Admission limits (HTTP 413 / 422). The body limit leaves room for a few images sent as `data:` URLs.
    max_body_bytes: int = Field(default=20_000_000, ge=1024)
    max_messages: int = Field(default=200, ge=1)
    max_message_chars: int = Field(default=100_000, ge=1)
    max_image_bytes: int = Field(default=10_000_000, ge=1)
    max_tools: int = Field(default=128, ge=1)
    max_tokens_ceiling: int = Field(default=32_768, ge=1)
    list_limit_max: int = Field(default=200, ge=1)

    # Who may read what (api.auth). Keys are `name:key` pairs, comma-separated; the name is the owner recorded
    # on the streams a key creates. The secret signs session cookies and share links: every API replica needs
    # the same one (a process without it makes its own and warns: cookies then fail on other replicas).
    secret_key: SecretStr | None = None
    api_keys: SecretStr = SecretStr("")
    admin_api_keys: SecretStr = SecretStr("")
    allow_anonymous: bool = True
    # Origins other than the API's own that browsers may call it from (CORS, and the CSRF Origin check).
    cors_origins: str = ""
    share_link_ttl_seconds: int = Field(default=3600, ge=1)
    share_link_max_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)

    # Admission (HTTP 429 / 503 with Retry-After) and SSE connection limits.
    max_active_streams_per_owner: int = Field(default=20, ge=1)
    max_queue_depth: int = Field(default=1000, ge=1)
    max_sse_connections_per_owner: int = Field(default=50, ge=1)
    # An SSE response ends after this long even mid-answer; the client resumes from its last event id, so a
    # long-lived connection cannot pin an API process forever (and a leaked slot count frees itself).
    sse_max_lifetime_seconds: float = Field(default=3600.0, gt=0)
    # A reader whose socket accepts nothing for this long is cut off and its buffers freed.
    sse_send_timeout_seconds: float = Field(default=30.0, gt=0)
    # Kernel send buffer of an SSE connection (0: the kernel's own, which grows to 4 MiB for a stalled reader).
    sse_socket_buffer_bytes: int = Field(default=65536, ge=0)

    # The AI SDK surface: how long after its end a chat's last answer is still replayed by
    # `GET /api/chat/{id}/stream` (a page that reloads as the answer ends still gets it), then 204.
    chat_replay_seconds: float = Field(default=300.0, ge=0)

    # SSE relay.
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    sse_retry_ms: int = Field(default=1000, ge=0)
    # An SSE response keeps its client waiting through a Redis outage this long (the hub retries with backoff),
    # then ends with a retryable `error` event; the client resumes from its last event id later.
    redis_outage_grace_seconds: float = Field(default=15.0, gt=0)

    # Worker.
    # Every enqueue wakes the workers at once (`worker.wake`); the poll is the safety net behind it.
    queue_poll_seconds: float = Field(default=0.25, gt=0)
    coalesce_window_ms: float = Field(default=0.0, ge=0)
    max_concurrent_jobs: int = Field(default=50, ge=1)
    upstream_read_timeout_seconds: float = Field(default=60.0, gt=0)
    generation_timeout_seconds: float = Field(default=900.0, gt=0)
    max_attempts: int = Field(default=2, ge=1)
    # A running attempt holds a lease its worker renews every `lease_renew_seconds`; one not renewed for
    # `lease_ttl_seconds` means the worker is gone, which some process notices within `lease_check_seconds`.
    lease_ttl_seconds: float = Field(default=5.0, gt=0)
    lease_renew_seconds: float = Field(default=1.0, gt=0)
    lease_check_seconds: float = Field(default=2.0, gt=0)

    # Observability. `json` lines for log collectors; `chatrelay dev` sets `text`. Each worker serves its
    # Prometheus metrics on this port (0: off); the API serves them at /metrics on its own port.
    log_format: Literal["json", "text"] = "json"
    log_level: str = Field(default="INFO", pattern=r"(?i)^(debug|info|warning|error)$")
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)

    # Worker registry (`chatrelay workers`, `GET /api/workers`): each worker refreshes its entry this often; an
    # entry not refreshed for `worker_ttl_seconds` expires, so a killed worker drops out on its own.
    worker_heartbeat_seconds: float = Field(default=2.0, gt=0)
    worker_ttl_seconds: float = Field(default=10.0, gt=0)

    def model_list(self) -> list[str]:
        """The default model first, then the others of `models`, each once."""
        names = [self.openai_model, *(m.strip() for m in self.models.split(","))]
        return list(dict.fromkeys(n for n in names if n))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time)."""
    return Settings()
