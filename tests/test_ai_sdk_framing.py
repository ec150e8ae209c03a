"""The UI message stream framing (`api.ai_sdk.framing`) against golden transcripts: stored entries in (encoded as
the worker encodes them), the exact bytes out, in `tests/golden/ui_message_stream/<case>.sse`.

`CHATRELAY_UPDATE_GOLDEN=1 pytest tests/test_ai_sdk_framing.py` rewrites the files; review the diff. Every chunk is
also checked against the fields ai 5.0.0's strict schemas accept (the real clients check them in
`tests/test_ai_sdk_clients.py`).
"""

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.ai_sdk.framing import FEATURES, UiMessageFraming, parse_features
from contract.events import (
    CancelledEvent,
    DoneEvent,
    ErrorEvent,
    ResetEvent,
    StartEvent,
    Usage,
    encode_event,
    encode_text,
    encode_tool_call,
)
from contract.store import RawEntry

GOLDEN = Path(__file__).parent / "golden" / "ui_message_stream"
TRICKY = 'line one\nline two\n\nevent: fake\ndata: x\n\n🙂 naïve "quoted" \\ \u2028 </script>'
USAGE = Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13)

# ai 5.0.0's `uiMessageChunkSchema` (`z.strictObject` for every type): the fields each chunk type may carry.
AI_5_0_0_FIELDS: dict[str, set[str]] = {
    "start": {"messageId", "messageMetadata"},
    "start-step": set(),
    "finish-step": set(),
    "text-start": {"id", "providerMetadata"},
    "text-delta": {"id", "delta", "providerMetadata"},
    "text-end": {"id", "providerMetadata"},
    "reasoning-start": {"id", "providerMetadata"},
    "reasoning-delta": {"id", "delta", "providerMetadata"},
    "reasoning-end": {"id", "providerMetadata"},
    "tool-input-start": {"toolCallId", "toolName", "providerExecuted", "dynamic"},
    "tool-input-delta": {"toolCallId", "inputTextDelta"},
    "tool-input-available": {"toolCallId", "toolName", "input", "providerExecuted", "providerMetadata", "dynamic"},
    "tool-output-available": {"toolCallId", "output", "providerExecuted", "dynamic"},
    "tool-output-error": {"toolCallId", "errorText", "providerExecuted", "dynamic"},
    "file": {"url", "mediaType", "providerMetadata"},
    "finish": {"messageMetadata"},
    "abort": set(),
    "error": {"errorText"},
}


def start(attempt: int = 1) -> tuple[bytes, bytes]:
    return encode_event(StartEvent(attempt=attempt, model="chatrelay-demo"))


def delta(text: str) -> tuple[bytes, bytes]:
    return encode_text(b"delta", text)


def done(reason: str | None = "stop", usage: Usage | None = USAGE) -> tuple[bytes, bytes]:
    return encode_event(DoneEvent(finish_reason=reason, usage=usage))


CASES: dict[str, list[tuple[bytes, bytes]]] = {
    "text": [start(), delta("Hello"), delta(", "), delta(TRICKY), done()],
    "empty_answer": [start(), done("length", None)],
    "reasoning_then_text": [
        start(),
        encode_text(b"reasoning", "Think "),
        encode_text(b"reasoning", "first."),
        delta("Then "),
        delta("answer."),
        done(),
    ],
    "parallel_tools": [
        start(),
        delta("Let me check."),
        encode_tool_call(0, "call_1", "get_weather", ""),
        encode_tool_call(1, "call_2", "get_time", ""),
        encode_tool_call(0, None, None, '{"city":'),
        encode_tool_call(1, None, None, '{"tz":"Asia/Tokyo"}'),
        encode_tool_call(0, None, None, '"Paris 🙂"}'),
        done("tool_calls"),
    ],
    "tool_name_late_and_bad_arguments": [
        start(),
        encode_tool_call(0, "call_a", None, '{"x"'),
        encode_tool_call(0, None, "lookup", ": 1}"),
        encode_tool_call(1, None, "broken", "{not json"),
        encode_tool_call(2, "call_c", "no_arguments", ""),
        done("tool_calls"),
    ],
    "text_after_tool_call": [
        start(),
        encode_tool_call(0, "call_1", "get_weather", "{}"),
        delta("More text."),
        done("stop"),
    ],
    "refusal": [start(), encode_text(b"refusal", "I can't "), encode_text(b"refusal", "help."), done()],
    "error": [start(), delta("Partial"), encode_event(ErrorEvent(code="upstream_error", message="boom"))],
    "cancelled": [start(), delta("Partial"), encode_event(CancelledEvent(chars=7))],
    "reset_before_any_text": [start(), encode_event(ResetEvent(attempt=2)), start(2), delta("Second try."), done()],
    "reset_after_text": [
        start(),
        delta("Dead attempt"),
        encode_event(ResetEvent(attempt=2)),
        start(2),
        delta("Second attempt."),
        done(),
    ],
    "unknown_event_type": [start(), (b"future_kind", b'{"x":1}'), delta("ok"), done()],
}
# The continued message of a follow-up answer, as the client sent it: replays start by rebuilding it.
RECAP: list[dict[str, Any]] = [
    {"type": "step-start"},
    {"type": "reasoning", "text": "Weather first.", "state": "done"},
    {"type": "text", "text": "Let me check.", "state": "done"},
    {
        "type": "tool-get_weather",
        "toolCallId": "call_1",
        "state": "output-available",
        "input": {"city": "Paris"},
        "output": {"temp": 21},
    },
    {"type": "dynamic-tool", "toolName": "search", "toolCallId": "call_2", "state": "output-error", "errorText": "x"},
    {"type": "tool-get_time", "toolCallId": "call_3", "state": "input-streaming"},
    {"type": "data-note", "id": "n1", "data": {"k": 1}},
    {"type": "file", "mediaType": "image/png", "url": "https://example.com/a.png"},
    {"type": "some-future-part", "x": 1},
]
CASES["continuation"] = [start(), delta("It is 21 °C."), done()]
FEATURED: dict[str, tuple[str, frozenset[str]]] = {
    "reset_after_text_reset_step": ("reset_after_text", frozenset({"reset-step"})),
    "text_finish_reason": ("text", frozenset({"finish-reason"})),
}


def frame_all(
    entries: list[tuple[bytes, bytes]], features: frozenset[str] = frozenset(), recap: list[Any] | None = None
) -> bytes:
    framing = UiMessageFraming("msg-golden", features, recap)
    out = framing.opening()
    for i, (kind, data) in enumerate(entries):
        entry: RawEntry = (f"{i + 1}-0".encode(), {b"t": kind, b"d": data})
        out += framing.entry(entry)
        if framing.ended:
            break
    return out


def chunks(sse: bytes) -> list[Any]:
    """The JSON chunks of a UI message stream, checking its framing: `data:` lines only, `[DONE]` last if at all."""
    events = sse.split(b"\n\n")
    assert events[-1] == b"", "every event ends with a blank line"
    values: list[Any] = []
    for i, event in enumerate(events[:-1]):
        assert event.startswith(b"data: "), event
        assert b"\n" not in event, event
        if event == b"data: [DONE]":
            assert i == len(events) - 2, "[DONE] is the last event"
            continue
        values.append(orjson.loads(event[6:]))
    return values


ALL = {**{name: (name, frozenset[str]()) for name in CASES}, **FEATURED}


@pytest.mark.parametrize("name", sorted(ALL))
def test_framing_golden(name: str) -> None:
    case, features = ALL[name]
    recap = RECAP if case == "continuation" else None
    out = frame_all(CASES[case], features, recap)
    path = GOLDEN / f"{name}.sse"
    if os.environ.get("CHATRELAY_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out)
    assert out == path.read_bytes()
    # The same entries give the same bytes, whichever response frames them (every replay is identical).
    assert frame_all(CASES[case], features, recap) == out
    values = chunks(out)
    assert values[0] == {"type": "start", "messageId": "msg-golden"}
    if not features:
        for value in values:
            allowed = AI_5_0_0_FIELDS.get(value["type"])
            if value["type"].startswith("data-"):
                allowed = {"id", "data", "transient"}
            assert allowed is not None, f"ai 5.0.0 has no chunk type {value['type']!r}"
            assert set(value) - {"type"} <= allowed, value


def text_of(sse: bytes, kind: str = "text") -> str:
    return "".join(v["delta"] for v in chunks(sse) if v["type"] == f"{kind}-delta")


def test_framing_text_is_the_stored_text() -> None:
    out = frame_all(CASES["text"])
    assert text_of(out) == "Hello, " + TRICKY
    assert out.endswith(b"data: [DONE]\n\n")
    finish = [v for v in chunks(out) if v["type"] == "finish"]
    assert finish == [{"type": "finish", "messageMetadata": {"finishReason": "stop", "usage": USAGE.model_dump()}}]


def test_framing_tool_input_is_the_whole_arguments() -> None:
    values = chunks(frame_all(CASES["parallel_tools"]))
    available = {v["toolCallId"]: v for v in values if v["type"] == "tool-input-available"}
    assert available["call_1"]["input"] == {"city": "Paris 🙂"}
    assert available["call_2"] == {
        "type": "tool-input-available",
        "toolCallId": "call_2",
        "toolName": "get_time",
        "input": {"tz": "Asia/Tokyo"},
    }
    streamed = "".join(v["inputTextDelta"] for v in values if v.get("toolCallId") == "call_1" and "inputTextDelta" in v)
    assert streamed == '{"city":"Paris 🙂"}'
    reason = next(v for v in values if v["type"] == "finish")["messageMetadata"]["finishReason"]
    assert reason == "tool-calls"


def test_framing_reset_after_text_ends_the_response_marked_failed() -> None:
    values = chunks(frame_all(CASES["reset_after_text"]))
    assert [v["type"] for v in values[-2:]] == ["data-chatrelay-reset", "error"]
    assert values[-2] == {"type": "data-chatrelay-reset", "data": {"attempt": 2}, "transient": True}
    assert values[-1]["errorText"].startswith("retrying: ")
    assert text_of(frame_all(CASES["reset_after_text"])) == "Dead attempt"  # the new attempt is for a resume


def test_framing_reset_step_drops_the_dead_attempt_and_continues() -> None:
    out = frame_all(CASES["reset_after_text"], frozenset({"reset-step"}))
    types = [v["type"] for v in chunks(out)]
    assert (types.count("reset-step"), types.count("start-step"), types[-1]) == (1, 1, "finish")
    after = out.split(b'{"type":"reset-step"}', 1)[1]
    assert text_of(b"data: " + after.split(b"data: ", 1)[1]) == "Second attempt."


def test_parse_features() -> None:
    assert parse_features(None) == frozenset()
    assert parse_features(" Reset-Step, finish-reason ,nonsense") == FEATURES


def test_framing_recap_rebuilds_the_continued_message_without_calling_tools_again() -> None:
    values = chunks(frame_all(CASES["continuation"], recap=RECAP))
    types = [v["type"] for v in values]
    assert "tool-input-available" not in types  # the client's `onToolCall` runs on that chunk alone
    assert types.count("start-step") == 2
    assert types.index("finish-step") < types.index("start-step", 2)
    assert text_of(frame_all(CASES["continuation"], recap=RECAP)) == "Let me check.It is 21 °C."
