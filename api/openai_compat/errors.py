"""Errors under `/v1`, in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`, the one mapping.

Every `/v1` route uses `OpenAIRoute`, which answers what the rest of the API raises (`api.errors.ApiError`,
validation errors, Redis being unreachable) in this shape instead of the native one; the status codes stay the
native ones (422 for a malformed body, as on `/api`), which the SDKs map to their own exception classes
(`openai.UnprocessableEntityError`, ...). The SDKs retry 408, 409, 429 and 5xx on their own (openai-python
`_base_client.py` `_should_retry`), unless `x-should-retry: false` says not to.
"""

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError, InvalidRequestError, NotFoundError, _field_path
from contract.metrics import REDIS_ERRORS

# The native codes that OpenAI names differently; the others are kept.
_CODES = {"unauthorized": "invalid_api_key", "too_many_requests": "rate_limit_exceeded"}

# A stored answer's error code (`error` event) as the HTTP status a non-streaming request answers with.
UPSTREAM_STATUS = {
    "rate_limited": 429,
    "upstream_rejected": 400,
    "upstream_timeout": 504,
    "generation_timeout": 504,
    "cancelled": 409,
}


class OpenAIParamError(InvalidRequestError):
    """A field of a `/v1` request that chatrelay cannot take, naming the field as OpenAI's `param`."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


class OpenAINotFoundError(NotFoundError):
    """A missing object (or another owner's), naming the field that pointed at it as `param` when there is one."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON body encoded with orjson (as the event payloads are)."""
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def error_type(status: int) -> str:
    if status == 429:
        return "requests"  # OpenAI's type for rate limits
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(
    status: int, code: str | None, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}
    return json_response(body, status, headers)


def from_api_error(exc: ApiError) -> Response:
    param: str | None = getattr(exc, "param", None)
    return openai_error(exc.status_code, _CODES.get(exc.code, exc.code), exc.message, param, exc.headers)


def from_validation_error(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    paths = [_field_path(e, exc.body) for e in errors]
    message = "; ".join(f"{p}: {e['msg']}" for p, e in list(zip(paths, errors, strict=True))[:5])
    return openai_error(422, "invalid_request", message or "invalid request", paths[0] if paths else None)


class OpenAIRoute(APIRoute):
    """An `APIRoute` whose errors (from the handler or its dependencies) come out in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return from_api_error(exc)
            except RequestValidationError as exc:
                return from_validation_error(exc)
            except StarletteHTTPException as exc:
                return openai_error(exc.status_code, None, str(exc.detail))
            except (RedisConnectionError, RedisTimeoutError):
                REDIS_ERRORS.labels("request").inc()
                message = "the stream store (Redis) cannot be reached; retry shortly"
                return openai_error(503, "unavailable", message, headers={"Retry-After": "2"})

        return route
