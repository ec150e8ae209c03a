"""The chat a stream answers: a Chat Completions request, validated where malformed input would hurt the service
and otherwise passed to the upstream as the client sent it.

Messages keep fields this model does not name (servers differ: vLLM accepts `reasoning` on assistant messages,
OpenRouter `cache_control` on parts), and `content: null` stays null. Options reach the upstream unchanged, and
`extra_body` carries provider extensions (vLLM's `top_k`, OpenRouter's `reasoning`) to the top level of the
upstream request, as the openai SDK's own `extra_body` does. `stream` and `stream_options` are the server's: the
worker always streams and always asks for usage.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_OPEN = ConfigDict(extra="allow")
_CLOSED = ConfigDict(extra="forbid")


class TextPart(BaseModel):
    model_config = _OPEN
    type: Literal["text"]
    text: str


class RefusalPart(BaseModel):
    model_config = _OPEN
    type: Literal["refusal"]
    refusal: str


class ImageUrl(BaseModel):
    model_config = _OPEN
    url: str = Field(pattern=r"^(https?://|data:)", description="An http(s) URL or a `data:` URL.")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    model_config = _OPEN
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(BaseModel):
    model_config = _OPEN
    data: str
    format: str = Field(min_length=1, max_length=32)


class AudioPart(BaseModel):
    model_config = _OPEN
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(BaseModel):
    model_config = _OPEN
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(BaseModel):
    model_config = _OPEN
    type: Literal["file"]
    file: FileRef


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class FunctionCall(BaseModel):
    model_config = _OPEN
    name: str = Field(min_length=1, max_length=256)
    arguments: str


class ToolCallParam(BaseModel):
    model_config = _OPEN
    id: str = Field(min_length=1, max_length=512)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(BaseModel):
    model_config = _OPEN
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(BaseModel):
    model_config = _OPEN
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessageParam(BaseModel):
    model_config = _OPEN
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallParam] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _says_something(self) -> "AssistantMessageParam":
        if self.content is None and not self.tool_calls and self.refusal is None:
            raise ValueError("an assistant message needs content, tool_calls or a refusal")
        return self


class ToolMessage(BaseModel):
    model_config = _OPEN
    role: Literal["tool"]
    tool_call_id: str = Field(min_length=1, max_length=512)
    content: str | list[TextPart]


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessageParam | ToolMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(BaseModel):
    model_config = _OPEN
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(BaseModel):
    model_config = _CLOSED
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    model_config = _CLOSED
    name: str = Field(min_length=1, max_length=128)


class NamedToolChoice(BaseModel):
    model_config = _CLOSED
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    model_config = _OPEN
    name: str = Field(min_length=1, max_length=128)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextFormat(BaseModel):
    model_config = _CLOSED
    type: Literal["text", "json_object"]


class JsonSchemaResponseFormat(BaseModel):
    model_config = _CLOSED
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonSchemaResponseFormat, Field(discriminator="type")]

# Keys the server sets itself; `extra_body` may not override them.
SERVER_KEYS = frozenset({"model", "messages", "stream", "stream_options", "n"})


class ChatRequest(BaseModel):
    """A chat to answer, as `chat.completions.create` takes it. Limits on sizes are settings (422 past them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    messages: list[Message] = Field(min_length=1)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    user: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    service_tier: str | None = Field(default=None, max_length=64)
    modalities: list[Literal["text", "audio"]] | None = None
    n: Literal[1] | None = Field(default=None, description="One answer per stream: only 1.")
    extra_body: dict[str, Any] | None = Field(
        default=None, description="Provider extensions, sent at the top level of the upstream request."
    )
    # Accepted for drop-in compatibility and ignored: the worker always streams and always asks for usage.
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _extra_body_keys(self) -> "ChatRequest":
        clash = sorted(SERVER_KEYS & set(self.extra_body or {}))
        if clash:
            raise ValueError(f"extra_body may not set {', '.join(clash)}: they are the server's")
        return self

    def stored(self) -> dict[str, Any]:
        """The request as the worker will send it (and a retried attempt sends again): what the client gave,
        `null`s included, without the server's keys."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude={"stream", "stream_options"})


def upstream_body(stored: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The messages and every other field of the upstream request (model aside), from a stored request."""
    options = {k: v for k, v in stored.items() if k not in ("model", "messages", "extra_body")}
    options.update(stored.get("extra_body") or {})
    return stored["messages"], options


def message_text_chars(message: dict[str, Any]) -> int:
    """Characters of a stored message's text (string content, text parts), for the size limits."""
    content = message.get("content")
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return 0
