"""What one `chat.completion.chunk` says, handed to the answer writer: text, reasoning, refusal, tool calls, the
finish reason and the usage, as real OpenAI-compatible servers send them.

Tolerated, from recorded streams of OpenAI, Azure, DeepSeek, Groq, Mistral, Ollama, OpenRouter, llama.cpp, vLLM
and GPUStack: chunks with `choices: []` or `null` (Azure's prompt-filter chunk, usage chunks), choices without a
`delta` (Azure's asynchronous filter), `content` as a list of parts whose `thinking` parts are reasoning
(Mistral), reasoning as `reasoning_content` (DeepSeek, LM Studio, GPUStack) or `reasoning` (vLLM, Ollama,
OpenRouter, Groq), usage inside `x_groq`, and error objects mid-stream, alone or beside choices and usage.
"""

import time
from typing import Any

from worker.answer_writer import REASONING, REFUSAL, TEXT, AnswerWriter


class StreamedError(Exception):
    """The upstream sent an error object inside its stream."""

    def __init__(self, message: str, body: object) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


class Answer:
    """What the upstream said besides the fragments the writer holds."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.content_chunks = 0  # chunks that carried any fragment: about the completion tokens
        self.first_token_at: float | None = None  # time.monotonic() of the first fragment


def _text_of(parts: list[Any], writer: AnswerWriter) -> bool:
    """Mistral's list content: `text` parts are answer text, `thinking` parts (a list of text parts) reasoning."""
    said = False
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str) and part["text"]:
            writer.add_text(TEXT, part["text"])
            said = True
        elif kind == "thinking":
            thinking = part.get("thinking")
            for inner in thinking if isinstance(thinking, list) else [{"text": thinking}]:
                text = inner.get("text") if isinstance(inner, dict) else None
                if isinstance(text, str) and text:
                    writer.add_text(REASONING, text)
                    said = True
    return said


def _delta(delta: dict[str, Any], writer: AnswerWriter) -> bool:
    """Hand a choice's delta to the writer, in the order a message has them; True when it said anything."""
    said = False
    # Both names occur; DeepSeek-style servers that send both mean the same text (prefer `reasoning_content`).
    field = "reasoning_content" if delta.get("reasoning_content") else "reasoning"
    reasoning = delta.get(field)
    if isinstance(reasoning, str) and reasoning:
        writer.add_reasoning(reasoning, field)
        said = True
    content = delta.get("content")
    if isinstance(content, str):
        if content:
            writer.add_text(TEXT, content)
            said = True
    elif isinstance(content, list):
        said = _text_of(content, writer) or said
    refusal = delta.get("refusal")
    if isinstance(refusal, str) and refusal:
        writer.add_text(REFUSAL, refusal)
        said = True
    for call in delta.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        arguments = function.get("arguments")
        call_id, name = call.get("id"), function.get("name")
        writer.add_tool_call(
            int(call.get("index") or 0),
            call_id if isinstance(call_id, str) else None,
            name if isinstance(name, str) else None,
            arguments if isinstance(arguments, str) else "",
        )
        said = True
    return said


_COUNTS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})


def _usage(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    # The counts the event model has must be whole numbers; everything else is kept as the upstream sent it.
    return {k: v for k, v in raw.items() if k not in _COUNTS or (isinstance(v, int) and not isinstance(v, bool))}


def take_chunk(chunk: Any, writer: AnswerWriter, answer: Answer) -> None:
    """Apply one parsed chunk; raises `StreamedError` on an error object (after keeping its usage)."""
    if not isinstance(chunk, dict):
        return
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) not in (0, None):
            continue  # one answer per stream (`n` is 1)
        delta = choice.get("delta")
        if isinstance(delta, dict) and _delta(delta, writer):
            answer.content_chunks += 1
            if answer.first_token_at is None:
                answer.first_token_at = time.monotonic()
        if choice.get("finish_reason"):
            answer.finish_reason = str(choice["finish_reason"])
    usage = _usage(chunk.get("usage"))
    if usage is None and isinstance(chunk.get("x_groq"), dict):
        usage = _usage(chunk["x_groq"].get("usage"))
    if usage is not None:
        answer.usage = usage
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        raise StreamedError(str(message or "an error occurred during streaming"), error)
