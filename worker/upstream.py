"""The model the worker talks to: OpenAI, Azure OpenAI, or any OpenAI-compatible server.

The credentials are read here and only here, in the worker process: they never reach Redis, job payloads,
events or logs.
"""

import re
from typing import Literal

import httpx2
import openai
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UpstreamSettings(BaseSettings):
    """The SDKs' own environment names, so an existing OpenAI or Azure setup works unchanged."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    openai_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_BASE_URL"))
    azure_openai_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("AZURE_OPENAI_ENDPOINT"))
    azure_openai_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("AZURE_OPENAI_API_KEY"))
    openai_api_version: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_VERSION"))
    # The SDK retries only before the stream starts; a retry mid-answer is a new attempt (see worker.generation).
    max_retries: int = Field(default=2, ge=0, validation_alias=AliasChoices("CHATRELAY_UPSTREAM_MAX_RETRIES"))
    # The SDK's HTTP transport. `aiohttp` (the SDK's own option, `openai[aiohttp]`) reads a streamed answer with
    # a C parser: a third less worker CPU per token than its default `httpx` stack (issue 5, `make bench`).
    http_client: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp", validation_alias=AliasChoices("CHATRELAY_UPSTREAM_HTTP_CLIENT")
    )

    def secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.openai_api_key, self.azure_openai_api_key) if s is not None]


def make_client(settings: UpstreamSettings, read_timeout: float) -> openai.AsyncOpenAI:
    timeout = openai.Timeout(read_timeout, connect=5.0)
    # The SDK's defaults (connection limits, redirects) either way; the timeout is the SDK's, per request.
    http_client: httpx2.AsyncClient = (
        openai.DefaultAioHttpClient() if settings.http_client == "aiohttp" else openai.DefaultAsyncHttpxClient()
    )
    if settings.azure_openai_endpoint:
        key = settings.azure_openai_api_key or settings.openai_api_key
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.azure_openai_endpoint,
            api_key=key.get_secret_value() if key else None,
            api_version=settings.openai_api_version,
            timeout=timeout,
            max_retries=settings.max_retries,
            http_client=http_client,
        )
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "missing-api-key",
        # compose passes an unset OPENAI_BASE_URL as an empty string, which the SDK would take as the base URL
        # (it reads the environment itself when given None): empty means OpenAI.
        base_url=settings.openai_base_url or "https://api.openai.com/v1",
        timeout=timeout,
        max_retries=settings.max_retries,
        http_client=http_client,
    )


_SECRET_PATTERNS = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[_-]?key[=:]\s*\S+)", re.IGNORECASE)


class Scrubber:
    """Removes secrets from texts that leave the worker (error messages, logs)."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = [s for s in secrets if len(s) >= 4]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _SECRET_PATTERNS.sub("[redacted]", text)[:500]


def classify_error(exc: BaseException) -> tuple[str, str]:
    """A stable error code and a plain message for an upstream failure (before scrubbing)."""
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited", f"the model provider is rate limiting requests (HTTP 429): {exc.message}"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return "upstream_auth", f"the model provider rejected the credentials (HTTP {exc.status_code})"
    if isinstance(exc, openai.BadRequestError | openai.NotFoundError | openai.UnprocessableEntityError):
        return "upstream_rejected", f"the model provider rejected the request (HTTP {exc.status_code}): {exc.message}"
    if isinstance(exc, openai.APIStatusError):
        return "upstream_http_error", f"the model provider answered HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "upstream_timeout", "the model stopped sending for longer than the read timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "upstream_disconnected", "the connection to the model provider failed or dropped mid-answer"
    if isinstance(exc, openai.APIError):
        return "upstream_error", f"the model provider reported an error mid-answer: {exc.message}"
    return "internal_error", f"the worker failed: {type(exc).__name__}"
