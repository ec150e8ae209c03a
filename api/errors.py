"""Errors the API answers before a stream exists, and the one place they become HTTP responses.

    ApiError
    ├── NotFoundError            404 unknown stream (or not yours)
    ├── BadOffsetError           400 malformed Last-Event-ID / ?offset=
    ├── UnauthorizedError        401 bad API key, or a key is required
    ├── LinkExpiredError         401 a share link past its expiry
    ├── ForbiddenOriginError     403 a browser request from an origin not allowed (CSRF)
    ├── OffsetGoneError          410 the stream holds no event with that id
    ├── PayloadTooLargeError     413 body over the size limit
    ├── UnsupportedMediaError    415 a state-changing request without a JSON content type (CSRF)
    ├── InvalidRequestError      422 a field breaks a limit
    ├── TooManyRequestsError     429 a per-owner limit (active streams, SSE connections), with Retry-After
    ├── QueueFullError           503 the queue holds its maximum, with Retry-After
    └── UnavailableError         503 Redis cannot be reached

Every error body is `{"error": {"code": ..., "message": ...}}` (plus `fields` for validation errors).
"""

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from contract.metrics import REDIS_ERRORS


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a human message."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class NotFoundError(ApiError):
    """No such stream (or not visible to the caller)."""

    status_code = 404
    code = "not_found"


class BadOffsetError(ApiError):
    """The offset is not a Redis stream entry id."""

    status_code = 400
    code = "bad_offset"


class UnauthorizedError(ApiError):
    """No valid credentials where they are required."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="chatrelay"'})


class LinkExpiredError(ApiError):
    """A share link whose signature is valid but whose time is up."""

    status_code = 401
    code = "link_expired"


class ForbiddenOriginError(ApiError):
    """A state-changing request from a browser page on another origin."""

    status_code = 403
    code = "forbidden_origin"


class UnsupportedMediaError(ApiError):
    """A state-changing request whose body is not declared as JSON."""

    status_code = 415
    code = "unsupported_media_type"


class TooManyRequestsError(ApiError):
    """A per-owner limit is reached."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds)})


class QueueFullError(ApiError):
    """The queue of answers waiting for a worker is full."""

    status_code = 503
    code = "queue_full"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds)})


class OffsetGoneError(ApiError):
    """The stream holds no event with the given id (expired, trimmed, or never existed)."""

    status_code = 410
    code = "offset_unavailable"


class PayloadTooLargeError(ApiError):
    """The request body is over the size limit."""

    status_code = 413
    code = "payload_too_large"


class InvalidRequestError(ApiError):
    """A field of the request breaks a limit."""

    status_code = 422
    code = "invalid_request"


class UnavailableError(ApiError):
    """Redis cannot be reached; retry later."""

    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _valid_text(text: str) -> str:
    """Text for an error body: a message may quote the client's input, which may not be valid Unicode."""
    return text.encode(errors="backslashreplace").decode()


def _field_path(error: Any, body: Any) -> str:
    """The path of the field an error is about, in the client's terms. Pydantic's `loc` also holds the members
    of unions it tried (`str`, `list[...]`) and the tags of discriminated ones (`user` for a message whose role is
    `user`): only the segments that exist in the body are kept, and the missing field of a `missing` error."""
    loc = list(error["loc"])
    if loc and loc[0] == "body":
        loc = loc[1:]
    else:
        return ".".join(str(p) for p in loc) or "body"
    parts: list[str] = []
    here = body
    for i, segment in enumerate(loc):
        in_dict = isinstance(here, dict) and isinstance(segment, str) and segment in here
        if in_dict or (isinstance(here, list) and isinstance(segment, int) and 0 <= segment < len(here)):
            here = here[segment]
        elif i == len(loc) - 1 and error["type"] == "missing":
            pass
        else:
            continue
        parts.append(str(segment))
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts.append(str((error.get("ctx") or {}).get("discriminator", "")).strip("'"))
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(error_body(exc.code, exc.message), exc.status_code, headers=exc.headers)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [(_field_path(e, exc.body), e) for e in exc.errors()]
        # A union's other members fail too ("Input should be a valid string" for list content): where an error
        # lies deeper in the same field, the shallow "wrong type" errors of the other members are noise.
        paths = [path for path, _ in errors]
        fields = [
            {"field": _valid_text(path), "message": _valid_text(e["msg"])}
            for path, e in errors
            if not (str(e["type"]).endswith("_type") and any(p.startswith(path + ".") for p in paths))
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return JSONResponse(error_body("invalid_request", message, fields=fields[:20]), 422)

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    async def on_redis_error(_request: Request, _exc: Exception) -> JSONResponse:
        REDIS_ERRORS.labels("request").inc()
        return JSONResponse(
            error_body("unavailable", "the stream store (Redis) cannot be reached; retry shortly"),
            503,
            headers={"Retry-After": "2"},
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RedisConnectionError, on_redis_error)
    app.add_exception_handler(RedisTimeoutError, on_redis_error)


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """Answer with an error body from ASGI middleware, which runs outside FastAPI's exception handlers."""
    body = orjson.dumps(error_body(code, message))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
