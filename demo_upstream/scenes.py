"""What the demo model streams besides plain text, chunk by chunk in the real Chat Completions format: a
reasoning phase, tool calls (one, or two in parallel with their fragments interleaved), a refusal, Azure's
content-filter chunks, an answer about the images it was sent, and `agent`: all of an agent's turn in one answer
(reasoning, then text, then a tool call). Chosen per request with `scene=`.

A scene is a list of steps; a step is the part of one `chat.completion.chunk` that differs from the envelope
(`choices`, and for Azure the envelope fields themselves). The server adds the envelope, the pacing and the
switches (errors, stalls, disconnects), and records what each step said.
"""

import re
from typing import Any

import orjson

from demo_upstream.script import Script, tokenize

DEMO_REASONING = """\
The user is trying chatrelay. Show what survives a reload: this reasoning, then an answer in Markdown with a \
list, a table and a code block. Keep it short and friendly.
"""

TOOL_REASONING = "The user asks about the weather (and the time). The tools can tell; call them with exact arguments."

# The tool calls the demo model makes, with arguments that test a relay's byte handling.
WEATHER_ARGS = orjson.dumps({"city": "Paris", "unit": "celsius", "note": 'naïve "café" 🙂\nline two'}).decode()
TIME_ARGS = orjson.dumps({"timezone": "Asia/Tokyo", "format": "24h"}).decode()
REFUSAL = "I'm sorry, but I can't help with that request. 🙏"

Step = dict[str, Any]
_DATA_URL = re.compile(r"^data:([^;,]+)[;,]")


def _delta(delta: dict[str, Any], **choice: Any) -> Step:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None, **choice}]}


def _finish(reason: str, **choice: Any) -> Step:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason, **choice}]}


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _tool_result_reply(messages: list[dict[str, Any]]) -> list[str] | None:
    """After tool results came back, the demo model says what they were."""
    if not messages or messages[-1].get("role") != "tool":
        return None
    results = [m for m in messages if m.get("role") == "tool"]
    said = "; ".join(f"{m.get('tool_call_id')}: {m.get('content')}" for m in results)
    return tokenize(f"The tools answered ({len(results)}): {said}")


def _images(messages: list[dict[str, Any]]) -> list[str]:
    users = [m for m in messages if m.get("role") == "user"]
    content = users[-1].get("content") if users else None
    types: list[str] = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            match = _DATA_URL.match(url)
            types.append(match.group(1) if match else "url")
    if not types:
        return tokenize("You sent me no images.")
    noun = "image" if len(types) == 1 else "images"
    return tokenize(f"You sent me {len(types)} {noun}: {', '.join(types)}.")


def _tool_call_steps(calls: list[tuple[str, str, str]]) -> list[Step]:
    """Each call's head (id and name), then the fragments of their arguments."""
    out = []
    for index, (call_id, name, _) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        out.append(_delta({"tool_calls": [head]}))
    fragments = [_pieces(args, 7) for _, _, args in calls]
    # Fragments of the calls alternate, as parallel calls from a real server may.
    for i in range(max(len(f) for f in fragments)):
        for index, pieces in enumerate(fragments):
            if i < len(pieces):
                out.append(_delta({"tool_calls": [{"index": index, "function": {"arguments": pieces[i]}}]}))
    return out


def steps(script: Script, messages: list[dict[str, Any]], text_tokens: list[str]) -> list[Step]:
    """The chunks of one reply before its finish chunk (the server sends that with `finish_reason`)."""
    scene = script.scene
    text = [_delta({"content": t}) for t in text_tokens]
    if scene == "text":
        return text
    if scene == "reasoning":
        if script.tokens > 0:
            half = len(text_tokens) // 2
            thought, said = text_tokens[:half], text_tokens[half:]
        else:
            thought, said = tokenize(DEMO_REASONING), text_tokens
        field = script.reasoning_field
        return [_delta({field: t}) for t in thought] + [_delta({"content": t}) for t in said]
    if scene in ("tool_call", "parallel_tools", "agent"):
        reply = _tool_result_reply(messages)
        if reply is not None:
            return [_delta({"content": t}) for t in reply]
        calls = [("call_demo_weather_1", "get_weather", WEATHER_ARGS)]
        if scene == "parallel_tools":
            calls.append(("call_demo_time_2", "get_time", TIME_ARGS))
        if scene == "agent":
            # Thinks, says what it will do (the reply: Markdown, or the question with echo=1), then calls.
            lead = [_delta({script.reasoning_field: t}) for t in tokenize(DEMO_REASONING)] + text
        else:
            # Think, say a word, then call: the order gpt-oss and Qwen3 answer a tool-using request in.
            lead = [_delta({script.reasoning_field: t}) for t in tokenize(TOOL_REASONING)]
            lead += [_delta({"content": t}) for t in tokenize("Let me check that.")]
        return lead + _tool_call_steps(calls)
    if scene == "refusal":
        return [_delta({"content": None, "refusal": ""})] + [_delta({"refusal": t}) for t in tokenize(REFUSAL)]
    if scene == "images":
        return [_delta({"content": t}) for t in _images(messages)]
    if scene == "azure":
        filters = {"hate": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}
        prompt = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
        }
        out = [prompt]
        out += [_delta({"content": t}, content_filter_results=filters) for t in text_tokens]
        # The asynchronous filter's trailing verdict: a choice without a delta.
        offsets = {"check_offset": 0, "start_offset": 0, "end_offset": sum(map(len, text_tokens))}
        trailing = {"index": 0, "finish_reason": None, "content_filter_results": filters}
        out.append({"id": "", "model": "", "choices": [{**trailing, "content_filter_offsets": offsets}]})
        return out
    raise ValueError(f"unknown demo scene {scene!r}")


def finish_reason(script: Script, messages: list[dict[str, Any]]) -> str:
    if script.scene in ("tool_call", "parallel_tools", "agent") and _tool_result_reply(messages) is None:
        return "tool_calls"
    return script.finish_reason
