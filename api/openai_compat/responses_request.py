"""A Responses request (`POST /v1/responses`) into the Chat Completions request the worker sends upstream.

Pure. The input items become chat messages: `message` items (roles user, system, developer, assistant; parts
`input_text`, `input_image`, `input_file`, `input_audio`, and `output_text` / `refusal` of earlier answers),
`function_call` items become the assistant message's `tool_calls` (consecutive calls join the assistant message
before them, as one answer's calls are one message in Chat Completions), `function_call_output` items become
`tool` messages; `reasoning` items are dropped (Chat Completions has no input field for them, and DeepSeek
rejects its `reasoning_content` sent back). `instructions` is a first `system` message, never carried on to the
next response (as at OpenAI). Options map to their Chat Completions names; `max_output_tokens` becomes
`max_completion_tokens`, the name current OpenAI and Azure models require.

What has no Chat Completions form (built-in tools such as `web_search`, `item_reference`, file ids for images)
is a 422 naming the field (`param`).
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.openai_compat.errors import OpenAIParamError


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesRequest(BaseModel):
    """What `client.responses.create(...)` sends. Fields without an effect here (`include`, `truncation`,
    `stream_options`, `store`: every response is stored for the stream's TTL) are accepted and echoed."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=256)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    reasoning: Reasoning | None = None
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    previous_response_id: str | None = Field(default=None, max_length=64)
    user: str | None = Field(default=None, max_length=512)
    safety_identifier: str | None = Field(default=None, max_length=512)
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    service_tier: str | None = Field(default=None, max_length=64)
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None


def _text_parts(content: Any, param: str, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(content, list):
        raise OpenAIParamError(param, "expected a string or a list of content parts")
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds or not isinstance(part.get("text"), str):
            raise OpenAIParamError(f"{param}.{j}", f"expected a part of type {' or '.join(kinds)} with a text")
        texts.append(part["text"])
    return texts


def _user_part(part: Any, param: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "input_text" and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise OpenAIParamError(f"{param}.image_url", "send the image as an https or data: URL (no file ids)")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k) is not None}
        return {"type": "file", "file": file}
    if kind == "input_audio" and isinstance(part.get("input_audio"), dict):
        return {"type": "input_audio", "input_audio": part["input_audio"]}
    raise OpenAIParamError(f"{param}.type", f"unsupported content part {kind!r}")


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role, content = item.get("role"), item.get("content")
    if role == "user":
        if isinstance(content, str):
            return {"role": "user", "content": content}
        if not isinstance(content, list):
            raise OpenAIParamError(f"{param}.content", "expected a string or a list of content parts")
        return {"role": "user", "content": [_user_part(p, f"{param}.content.{j}") for j, p in enumerate(content)]}
    if role in ("system", "developer"):
        if isinstance(content, str):
            return {"role": role, "content": content}
        parts = _text_parts(content, f"{param}.content", ("input_text",))
        return {"role": role, "content": [{"type": "text", "text": t} for t in parts]}
    if role == "assistant":
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        if not isinstance(content, list):
            raise OpenAIParamError(f"{param}.content", "expected a string or a list of content parts")
        message: dict[str, Any] = {"role": "assistant", "content": None}
        texts: list[str] = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("output_text", "input_text") and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "refusal" and isinstance(part.get("refusal"), str):
                message["refusal"] = part["refusal"]
            else:
                raise OpenAIParamError(f"{param}.content.{j}.type", f"unsupported content part {kind!r}")
        if texts or "refusal" not in message:
            message["content"] = "".join(texts)
        return message
    raise OpenAIParamError(f"{param}.role", f"unsupported role {role!r}")


def input_messages(items: str | list[dict[str, Any]], param: str = "input") -> list[dict[str, Any]]:
    """Chat Completions messages of a Responses `input` (or of a response's `output` items)."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        here = f"{param}.{i}"
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, here))
        elif kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    raise OpenAIParamError(f"{here}.{name}", "expected a string")
            function = {"name": item["name"], "arguments": item["arguments"]}
            call = {"id": item["call_id"], "type": "function", "function": function}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(item.get("call_id"), str):
                raise OpenAIParamError(f"{here}.call_id", "expected a string")
            if not isinstance(output, str):
                texts = _text_parts(output, f"{here}.output", ("input_text", "output_text"))
                output = [{"type": "text", "text": t} for t in texts]
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
        elif kind == "reasoning":
            continue
        else:
            raise OpenAIParamError(f"{here}.type", f"unsupported input item type {kind!r}")
    return messages


def input_items(stream_id: str, items: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input as OpenAI lists it (`GET /v1/responses/{id}/input_items`): items with ids, string content as an
    `input_text` part."""
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        listed = {"id": f"in_{stream_id}_{i}", "type": item.get("type", "message"), **item}
        if listed["type"] == "message":
            listed.setdefault("status", "completed")
            if isinstance(listed.get("content"), str):
                kind = "output_text" if listed.get("role") == "assistant" else "input_text"
                listed["content"] = [{"type": kind, "text": listed["content"]}]
        out.append(listed)
    return out


def _tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise OpenAIParamError(f"{param}.type", f"only function tools can be relayed, not {tool.get('type')!r}")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> Any:
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise OpenAIParamError("tool_choice", f"unsupported tool_choice {choice!r}")
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise OpenAIParamError("tool_choice", "only none, auto, required or a function can be relayed")


def _response_format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "description", "strict") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise OpenAIParamError("text.format.type", f"unsupported text format {kind!r}")


def chat_body(request: ResponsesRequest, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The Chat Completions request (`contract.chat_request.ChatRequest` fields) for `request`, continuing
    `history` (the earlier turns' messages, without their instructions)."""
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages += history
    messages += input_messages(request.input)
    body: dict[str, Any] = {"messages": messages}
    if request.model is not None:
        body["model"] = request.model
    if request.tools:
        body["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(request.tools)]
        if request.parallel_tool_calls is not None:
            # Only with tools: OpenAI rejects `parallel_tool_calls` on a request without them.
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    for name in ("temperature", "top_p", "user", "prompt_cache_key", "service_tier"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning_effort"] = request.reasoning.effort
    if request.text is not None:
        if request.text.format is not None:
            response_format = _response_format(request.text.format)
            if response_format is not None:
                body["response_format"] = response_format
        if request.text.verbosity is not None:
            body["verbosity"] = request.text.verbosity
    return body


def echo_fields(request: ResponsesRequest, model: str, created_at: int) -> dict[str, Any]:
    """The Response object's fields that come from the request (every Response, event and poll, carries them)."""
    text: dict[str, Any] = {"format": (request.text.format if request.text else None) or {"type": "text"}}
    if request.text is not None and request.text.verbosity is not None:
        text["verbosity"] = request.text.verbosity
    return {
        "created_at": created_at,
        "model": model,
        "background": bool(request.background),
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata or {},
        "parallel_tool_calls": True if request.parallel_tool_calls is None else request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "reasoning": {
            "effort": request.reasoning.effort if request.reasoning else None,
            "summary": request.reasoning.summary if request.reasoning else None,
        },
        "store": True if request.store is None else request.store,
        "temperature": request.temperature,
        "text": text,
        "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
        "tools": request.tools or [],
        "top_p": request.top_p,
        "truncation": request.truncation or "disabled",
        "user": request.user,
    }
