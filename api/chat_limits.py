"""The size limits a chat request must keep (settings; 422 naming the field past them), and what JSON can carry
that the rest of the way cannot.

JSON can carry strings that are not valid Unicode (a lone surrogate such as `"\\ud800"`, or raw bytes that decode
to one) and integers of any size; Python accepts both, but neither can be encoded for Redis or the upstream
(UTF-8, 64-bit integers), so they are refused here with the path of the field, before anything stores or logs the
request.
"""

import math
from typing import Any

from api.errors import InvalidRequestError
from contract.chat_request import ChatRequest, message_text_chars
from contract.settings import Settings

_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson encodes


def first_unencodable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The path of the first string (key or value) that is not valid Unicode or integer out of the 64-bit range in
    `value`, with what is wrong with it; None when there is none."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path or "body", "the string is not valid Unicode (it holds a lone surrogate)"
        return None
    if isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return path or "body", "the integer is out of the 64-bit range"
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body", "the number is not finite (NaN and Infinity are not JSON)"
    if isinstance(value, dict):
        for key, item in value.items():
            # The path goes into the error message, which must itself be valid Unicode.
            safe = str(key).encode(errors="backslashreplace").decode()
            here = f"{path}.{safe}" if path else safe
            if isinstance(key, str) and first_unencodable(key) is not None:
                return here, "the key is not valid Unicode (it holds a lone surrogate)"
            found = first_unencodable(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = first_unencodable(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def _data_url_bytes(url: str) -> int:
    """About how many bytes a base64 `data:` URL carries (its encoded length times 3/4)."""
    _, _, data = url.partition(",")
    return len(data) * 3 // 4


def check_chat(body: ChatRequest, settings: Settings) -> dict[str, Any]:
    """The request as it will be stored, once it keeps every limit; raises `InvalidRequestError` otherwise."""
    stored = body.stored()
    bad = first_unencodable(stored)
    if bad is not None:
        raise InvalidRequestError(f"{bad[0]}: {bad[1]}")
    s = settings
    messages: list[dict[str, Any]] = stored["messages"]
    if len(messages) > s.max_messages:
        raise InvalidRequestError(f"messages: at most {s.max_messages} messages are allowed, got {len(messages)}")
    for i, message in enumerate(messages):
        chars = message_text_chars(message)
        if chars > s.max_message_chars:
            raise InvalidRequestError(
                f"messages.{i}.content: at most {s.max_message_chars} characters are allowed, got {chars}"
            )
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else []):
            url = (part.get("image_url") or {}).get("url", "") if part.get("type") == "image_url" else ""
            if url.startswith("data:") and _data_url_bytes(url) > s.max_image_bytes:
                raise InvalidRequestError(
                    f"messages.{i}.content.{j}.image_url.url: an image may have at most {s.max_image_bytes} bytes, "
                    f"got about {_data_url_bytes(url)}"
                )
    if body.tools is not None and len(body.tools) > s.max_tools:
        raise InvalidRequestError(f"tools: at most {s.max_tools} tools are allowed, got {len(body.tools)}")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, name)
        if value is not None and value > s.max_tokens_ceiling:
            raise InvalidRequestError(f"{name}: at most {s.max_tokens_ceiling} is allowed, got {value}")
    return stored
