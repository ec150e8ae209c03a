"""Logging for every chatrelay process: JSON lines in production, readable text in development.

One handler on the root logger; uvicorn's and arq's loggers are pointed at it, so every line of a process has
one format. Every line logged while a stream is being handled carries its id (`stream_id`, from a context
variable that the API routes and the worker's job set), so one grep follows an answer across processes.

Lines never carry secrets: `token=`, `key=` and similar query parameters (share links in access logs),
`Bearer` credentials and `sk-...` keys are replaced by `[redacted]`, as are the exact secrets a process
registers (the worker registers the model key). Prompt text is never logged at info level or above.
"""

import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["json", "text"]

STREAM_ID: ContextVar[str | None] = ContextVar("chatrelay_stream_id", default=None)

_REDACTED = "[redacted]"
_QUERY_SECRET = re.compile(r"([?&](?:token|access_token|api_key|apikey|key|sig|signature)=)[^&\s\"']+", re.IGNORECASE)
_SECRET_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._~+/=\-]+)", re.IGNORECASE)
# uvicorn's and arq's own loggers: their handlers are replaced by ours.
# arq's own job lines name the job id, which is the stream id (`<id>` or `<id>:attempt-<n>`).
_ARQ_JOB = re.compile(r"[→←] ([A-Za-z0-9_-]{22})(?::attempt-\d+)?:")
_FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker", "arq.jobs", "arq.connections")


@contextmanager
def stream_context(stream_id: str) -> Iterator[None]:
    """Every line logged inside carries `stream_id`."""
    token = STREAM_ID.set(stream_id)
    try:
        yield
    finally:
        STREAM_ID.reset(token)


def bind_stream(stream_id: str) -> None:
    """Tag the rest of the current task's lines with `stream_id` (an API request runs in its own task)."""
    STREAM_ID.set(stream_id)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + _REDACTED, text)
    return _SECRET_SHAPES.sub(_REDACTED, text)


class ContextFilter(logging.Filter):
    """Adds `stream_id` (an explicit `extra={"stream_id": ...}` wins) and scrubs the message of secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values (the demo's key is `demo`) are not worth mangling every line that contains the word.
        self.secrets = [s for s in secrets if len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if getattr(record, "stream_id", None) is None:
            stream_id = STREAM_ID.get()
            if stream_id is None and record.name.startswith("arq"):
                job = _ARQ_JOB.search(message)
                stream_id = job[1] if job else None
            record.stream_id = stream_id
        clean = scrub(message, self.secrets)
        if clean != message or record.args:
            # Freeze the formatted message so formatters never see the raw arguments again.
            record.msg, record.args = clean, None
        return True


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    # uvicorn.access logs ("%s - \"%s %s HTTP/%s\" %d", client, method, path, version, status); the filter
    # has already formatted it, so take the fields from the text.
    match = re.match(r'^(\S+) - "(\S+) (\S+) HTTP/[\d.]+" (\d{3})', record.getMessage())
    if match is None:
        return {}
    return {"client": match[1], "method": match[2], "path": match[3], "status": int(match[4])}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, service, message, stream_id (when set), exc (when any)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        stream_id = getattr(record, "stream_id", None)
        if stream_id is not None:
            line["stream_id"] = stream_id
        if record.name == "uvicorn.access":
            line.update(_access_fields(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`14:38:59.123 INFO  chatrelay.worker [stream q3Xo...] message` for a terminal."""

    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s%(stream)s %(message)s", "%H:%M:%S")
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        stream_id = getattr(record, "stream_id", None)
        record.stream = f" [stream {stream_id}]" if stream_id else ""
        return super().format(record)


def setup_logging(service: str, fmt: LogFormat = "json", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Route every log line of this process (ours, uvicorn's, arq's) through one scrubbing handler.

    Idempotent: calling it again (arq configures its own logger after importing the worker) replaces the
    handler instead of adding a second one.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    handler.addFilter(ContextFilter(secrets))
    handler.set_name("chatrelay")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "chatrelay"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        if name == "uvicorn.access" and not foreign.handlers and not foreign.propagate:
            continue  # `uvicorn --no-access-log`: uvicorn logs access lines only when the logger has a handler
        foreign.handlers.clear()
        foreign.propagate = True
