"""The AI SDK transport's request, and its UI messages as the Chat Completions request chatrelay stores: pure.

`DefaultChatTransport` posts `{...body, id, messages, trigger, messageId}` (vercel/ai
`packages/ai/src/ui/http-chat-transport.ts`, the same shape since ai 5.0.0); `body` is where an app puts `model`
and the other options, which keep their Chat Completions names and limits (`contract.chat_request`).

UI messages become Chat Completions messages the way the AI SDK's own OpenAI provider converts them
(`convertToModelMessages` in `packages/ai/src/ui/convert-to-model-messages.ts`, then
`packages/openai/src/chat/convert-to-openai-chat-messages.ts`):
- user text and files: a single text part is a plain string; images are `image_url` parts, WAV and MP3 audio
  `input_audio`, PDFs `file` parts (from `data:` URLs; other files have no place in the request: 422);
- an assistant message is one Chat Completions message per step (its `step-start` parts divide them), with the
  step's text as `content` and its finished tool calls as `tool_calls`, each followed by a `tool` message with the
  result (a string output as it is, any other as JSON, an error's text, or a denial);
- reasoning, sources, data parts and tool calls that have no result yet are dropped: Chat Completions has no place
  for the first three, and rejects a tool call without its result.
"""

import re
import secrets
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Chat ids go in a URL path (`{api}/{id}/stream`, not encoded by ai 5) and a Redis key: the AI SDK's own ids
# (16 letters and digits), UUIDs, nanoids; but not `.` or `..`, which a URL path resolves away.
CHAT_ID = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.:~-]{1,128}$")


class TranslationError(ValueError):
    """A UI message that cannot become a Chat Completions message; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class UiMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, max_length=256)
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]]


def _chat_id(value: str) -> str:
    if CHAT_ID.match(value) is None:
        raise ValueError("a chat id is 1-128 letters, digits and `_.:~-` (and not `.` or `..`)")
    return value


class UiChatRequest(BaseModel):
    """The transport's body. Every field besides these four is an option of the Chat Completions request."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: Annotated[str, AfterValidator(_chat_id), Field(description="The chat id (`Chat`'s `id`).")]
    messages: list[UiMessage] = Field(min_length=1)
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = Field(default=None, alias="messageId", max_length=256)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def new_message_id() -> str:
    """An id for a new assistant message, 96 random bits (the AI SDK's own are 16 characters too)."""
    return secrets.token_urlsafe(12)


def conversation(body: UiChatRequest) -> tuple[list[UiMessage], str | None]:
    """The messages to answer and the id of the assistant message the answer continues, if any.

    `regenerate-message` drops the assistant message being regenerated (the given one, or the last) and what
    follows it; the AI SDK's `regenerate()` has already done so, other clients may not have. A submit whose last
    message is the assistant's continues it (the follow-up after tool results): the answer keeps its id, as the
    AI SDK's server helpers do, so the client extends that message instead of adding one."""
    messages = list(body.messages)
    if body.trigger == "regenerate-message":
        index = next((i for i, m in enumerate(messages) if body.message_id and m.id == body.message_id), None)
        if index is None and messages[-1].role == "assistant":
            index = len(messages) - 1
        if index is not None:
            messages = messages[:index] if messages[index].role == "assistant" else messages[: index + 1]
        if not messages:
            raise TranslationError("messages", "nothing is left to answer once the regenerated message is removed")
        return messages, None
    last = messages[-1]
    return messages, (last.id or None) if last.role == "assistant" else None


def chat_messages(messages: list[UiMessage]) -> list[dict[str, Any]]:
    """Chat Completions messages for UI messages (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if message.role == "system":
            out.append({"role": "system", "content": "".join(_texts(message.parts, path))})
        elif message.role == "user":
            out.append({"role": "user", "content": _user_content(message.parts, path)})
        else:
            out += _assistant(message.parts, path)
    if not out:
        raise TranslationError("messages", "no message is left to send")
    return out


def _str(part: dict[str, Any], name: str, path: str) -> str:
    value = part.get(name)
    if not isinstance(value, str):
        raise TranslationError(f"{path}.{name}", "a string is required")
    return value


def _type(part: dict[str, Any], path: str) -> str:
    return _str(part, "type", path)


def _texts(parts: list[dict[str, Any]], path: str) -> list[str]:
    here = [(p, f"{path}.parts.{j}") for j, p in enumerate(parts)]
    return [_str(p, "text", at) for p, at in here if _type(p, at) == "text"]


_DATA_URL = re.compile(r"^data:([^;,]*)(;base64)?,", re.IGNORECASE)
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}


def _user_content(parts: list[dict[str, Any]], path: str) -> str | list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        here = f"{path}.parts.{j}"
        kind = _type(part, here)
        if kind == "text":
            content.append({"type": "text", "text": _str(part, "text", here)})
        elif kind == "file":
            content.append(_file(part, here, j))
    if not content:
        raise TranslationError(f"{path}.parts", "a user message needs a text or a file part")
    if len(content) == 1 and content[0]["type"] == "text":
        return str(content[0]["text"])
    return content


def _file(part: dict[str, Any], path: str, index: int) -> dict[str, Any]:
    media_type = _str(part, "mediaType", path).lower()
    url = _str(part, "url", path)
    if media_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    data_url = _DATA_URL.match(url)
    if media_type in _AUDIO_FORMATS or media_type == "application/pdf":
        if data_url is None or not data_url.group(2):
            raise TranslationError(f"{path}.url", f"a {media_type} file must be sent as a base64 `data:` URL")
        if media_type == "application/pdf":
            filename = part.get("filename") if isinstance(part.get("filename"), str) else None
            return {"type": "file", "file": {"filename": filename or f"part-{index}.pdf", "file_data": url}}
        return {
            "type": "input_audio",
            "input_audio": {"data": url[data_url.end() :], "format": _AUDIO_FORMATS[media_type]},
        }
    raise TranslationError(
        f"{path}.mediaType", f"files of type {media_type!r} cannot be sent (images, WAV and MP3 audio, PDF)"
    )


# Tool part states that carry a result; the others (input-streaming, input-available, approval-requested,
# approval-responded) are calls still waiting for one.
_RESULT_STATES = frozenset({"output-available", "output-error", "output-denied"})


def _json(value: Any, path: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise TranslationError(path, f"cannot be sent as JSON ({exc})") from None


def _tool_result(part: dict[str, Any], state: str, path: str) -> str:
    if state == "output-error":
        return str(part.get("errorText") or "")
    if state == "output-denied":
        approval = part.get("approval")
        reason = approval.get("reason") if isinstance(approval, dict) else None
        return reason if isinstance(reason, str) and reason else "Tool execution denied."
    output = part.get("output")
    return output if isinstance(output, str) else _json(output, f"{path}.output")


def _assistant(parts: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def end_step() -> None:
        if text or calls:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
            if calls:
                message["tool_calls"] = list(calls)
            out.append(message)
            out.extend(results)
        text.clear()
        calls.clear()
        results.clear()

    for j, part in enumerate(parts):
        here = f"{path}.parts.{j}"
        kind = _type(part, here)
        if kind == "step-start":
            end_step()
        elif kind == "text":
            text.append(_str(part, "text", here))
        elif kind.startswith("tool-") or kind == "dynamic-tool":
            state = part.get("state")
            if state not in _RESULT_STATES:
                continue
            name = _str(part, "toolName", here) if kind == "dynamic-tool" else kind.removeprefix("tool-")
            call_id = _str(part, "toolCallId", here)
            arguments = _json(part["input"], f"{here}.input") if part.get("input") is not None else "{}"
            calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
            results.append({"role": "tool", "tool_call_id": call_id, "content": _tool_result(part, state, here)})
    end_step()
    return out
