"""The `/v1` translators, pure: stored entries in, the exact bytes out (golden transcripts in `tests/golden/`,
written by `python -m tests.test_openai_translators` and read by a person before they are committed), and tables of
Responses requests into Chat Completions requests."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.openai_compat.chat_chunks import ChatChunks
from api.openai_compat.errors import OpenAIParamError
from api.openai_compat.responses_events import ResponseEvents
from api.openai_compat.responses_request import ResponsesRequest, chat_body, echo_fields, input_messages
from contract.settings import Settings
from contract.store import RawEntry

GOLDEN = Path(__file__).parent / "golden"
SID = "G0ldenStreamId0000000A"


def entries(*events: tuple[str, dict[str, Any]]) -> list[RawEntry]:
    """Stored entries with ids one millisecond apart."""
    return [
        (f"{1764000000000 + i}-0".encode(), {b"t": t.encode(), b"d": orjson.dumps(d)})
        for i, (t, d) in enumerate(events)
    ]


USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 9,
    "total_tokens": 19,
    "prompt_tokens_details": {"cached_tokens": 2},
    "completion_tokens_details": {"reasoning_tokens": 3},
}
TOOLS_STREAM = entries(
    ("start", {"attempt": 1, "model": "m"}),
    ("reasoning", {"text": "Think ", "field": "reasoning"}),
    ("reasoning", {"text": "🙂\n"}),
    ("delta", {"text": 'Let me "check".'}),
    ("tool_call", {"index": 0, "id": "call_a", "name": "get_weather", "arguments": '{"ci'}),
    ("tool_call", {"index": 1, "id": "call_b", "name": "get_time", "arguments": ""}),
    ("tool_call", {"index": 0, "arguments": 'ty":"Paris"}'}),
    ("tool_call", {"index": 1, "arguments": "{}"}),
    ("done", {"finish_reason": "tool_calls", "usage": USAGE}),
)
REFUSAL_STREAM = entries(
    ("start", {"attempt": 1, "model": "m"}),
    ("delta", {"text": "Well"}),
    ("refusal", {"text": "I can't."}),
    ("done", {"finish_reason": "length", "usage": None}),
)
ECHO = echo_fields(ResponsesRequest(model="m", input="hi", background=True), "m", 1764000000)


def responses_bytes(stream: list[RawEntry], starting_after: int = -1) -> bytes:
    view = ResponseEvents(SID, ECHO, starting_after)
    out = view.opening()
    for entry in stream:
        out += view.feed(entry)
    return out


def chat_bytes(stream: list[RawEntry], include_usage: bool = True) -> bytes:
    chunks = ChatChunks(SID, 1764000000, "m", include_usage)
    out = chunks.opening()
    for entry in stream:
        out += chunks.frame(entry)[0]
    return out


def blocks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON of each SSE block."""
    return [orjson.loads(b.split(b"data: ", 1)[1]) for b in raw.split(b"\n\n") if b]


CASES: dict[str, Callable[[], bytes]] = {
    "responses_tools.sse": lambda: responses_bytes(TOOLS_STREAM),
    "responses_refusal_incomplete.sse": lambda: responses_bytes(REFUSAL_STREAM),
    "chat_tools.sse": lambda: chat_bytes(TOOLS_STREAM),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_transcript(name: str) -> None:
    assert CASES[name]() == (GOLDEN / name).read_bytes()


def test_responses_events_are_the_same_on_every_replay_and_filtered_by_sequence_number() -> None:
    full = blocks(responses_bytes(TOOLS_STREAM))
    assert [e["sequence_number"] for e in full] == list(range(len(full)))
    assert full[0]["type"] == "response.created"
    assert full[-1]["type"] == "response.completed"
    for n in (0, 5, len(full) - 2):
        assert blocks(responses_bytes(TOOLS_STREAM, n)) == full[n + 1 :]
    assert responses_bytes(TOOLS_STREAM, len(full)) == b""
    # Every item is added at the next output index, with a unique id, and done before the response completes.
    added = [e for e in full if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2, 3]
    assert len({e["item"]["id"] for e in added}) == 4
    done = [e["output_index"] for e in full if e["type"] == "response.output_item.done"]
    assert sorted(done) == [0, 1, 2, 3]
    assert [i["id"] for i in full[-1]["response"]["output"]] == [e["item"]["id"] for e in added]


def test_a_retry_before_any_output_is_invisible() -> None:
    retried = entries(
        ("start", {"attempt": 1, "model": "m"}),
        ("reset", {"attempt": 2}),
        ("start", {"attempt": 2, "model": "m"}),
        ("delta", {"text": "Hi"}),
        ("done", {"finish_reason": "stop", "usage": None}),
    )
    plain = entries(("start", {"attempt": 1, "model": "m"}), ("delta", {"text": "Hi"}))
    plain.append((retried[-1][0], retried[-1][1]))  # the same time: `completed_at` comes from the entry id
    assert responses_bytes(retried) == responses_bytes(plain)
    assert chat_bytes(retried) == chat_bytes(plain)


def test_a_retry_after_output_fails_and_shows_nothing_of_the_new_attempt() -> None:
    retried = entries(
        ("start", {"attempt": 1, "model": "m"}),
        ("delta", {"text": "First try"}),
        ("reset", {"attempt": 2}),
        ("start", {"attempt": 2, "model": "m"}),
        ("delta", {"text": "Second"}),
        ("done", {"finish_reason": "stop", "usage": None}),
    )
    view = ResponseEvents(SID, ECHO)
    out = view.opening() + b"".join(view.feed(e) for e in retried[:3])
    assert view.ended
    events = blocks(out)
    assert [e["type"] for e in events[-3:]] == ["response.output_item.done", "error", "response.failed"]
    error = events[-2]
    assert error["code"] == error["error"]["code"] == "server_error"  # flat and nested
    assert "retried" in error["message"]
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"
    assert b"".join(view.feed(e) for e in retried[3:]) == b""
    assert view.response()["status"] == "failed"
    assert view.response()["output"][0]["content"][0]["text"] == "First try"
    chat = chat_bytes(retried)
    assert b"Second" not in chat
    assert blocks(chat)[-1]["error"]["code"] == "retried"


def test_errors_cancels_and_limits() -> None:
    failed = entries(("start", {"attempt": 1, "model": "m"}), ("error", {"code": "rate_limited", "message": "slow"}))
    events = blocks(responses_bytes(failed))
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "rate_limited: slow"}
    cancelled = entries(
        ("start", {"attempt": 1, "model": "m"}),
        ("delta", {"text": "Part"}),
        ("cancelled", {"chars": 4, "usage": None, "upstream_chunks": 1}),
    )
    view = ResponseEvents(SID, ECHO)
    last = blocks(view.opening() + b"".join(view.feed(e) for e in cancelled))[-1]
    assert last["type"] == "response.output_item.done"
    assert last["item"]["status"] == "incomplete"
    assert view.ended
    assert view.response()["status"] == "cancelled"
    incomplete = blocks(responses_bytes(REFUSAL_STREAM))[-1]
    assert incomplete["type"] == "response.incomplete"
    assert incomplete["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert blocks(chat_bytes(cancelled))[-1]["error"]["code"] == "cancelled"


def test_chat_chunks_name_reasoning_as_the_upstream_did_and_end_with_done() -> None:
    raw = chat_bytes(TOOLS_STREAM, include_usage=False)
    assert raw.endswith(b"data: [DONE]\n\n")
    chunks = blocks(raw.removesuffix(b"data: [DONE]\n\n"))
    assert chunks[1]["choices"][0]["delta"] == {"reasoning": "Think "}
    assert chunks[2]["choices"][0]["delta"] == {"reasoning": "🙂\n"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["choices"] for c in chunks)  # no usage chunk unless asked for
    default = entries(("reasoning", {"text": "x"}))
    assert blocks(chat_bytes(default))[1]["choices"][0]["delta"] == {"reasoning_content": "x"}


@pytest.mark.parametrize(
    ("items", "messages"),
    [
        ("hi", [{"role": "user", "content": "hi"}]),
        (
            [{"role": "developer", "content": [{"type": "input_text", "text": "be kind"}]}],
            [{"role": "developer", "content": [{"type": "text", "text": "be kind"}]}],
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    ],
                }
            ],
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    ],
                }
            ],
        ),
        (
            # An earlier answer passed back as output items: reasoning dropped, calls joined to its message.
            [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
                },
                {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "g", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "9"}]},
            ],
            [
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "9"}]},
            ],
        ),
        (
            [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}],
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                }
            ],
        ),
        (
            [{"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}],
            [{"role": "assistant", "content": None, "refusal": "No."}],
        ),
    ],
    ids=["string", "developer-parts", "image", "output-items-back", "call-alone", "refusal"],
)
def test_input_items_into_messages(items: Any, messages: list[dict[str, Any]]) -> None:
    assert input_messages(items) == messages


def test_options_into_chat_completions_names() -> None:
    request = ResponsesRequest.model_validate(
        {
            "model": "m",
            "input": "hi",
            "instructions": "sys",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": False,
            "temperature": 0.5,
            "top_p": 0.9,
            "max_output_tokens": 100,
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}, "verbosity": "low"},
            "metadata": {"k": "v"},
            "user": "u1",
        }
    )
    assert chat_body(request, [{"role": "user", "content": "before"}]) == {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "before"},
            {"role": "user", "content": "hi"},
        ],
        "model": "m",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}],
        "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u1",
        "max_completion_tokens": 100,
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
        "verbosity": "low",
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input.0.type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input.0.content.0.image_url",
        ),
        ({"input": "x", "tools": [{"type": "file_search"}]}, "tools.0.type"),
        ({"input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role"),
    ],
)
def test_what_chat_completions_cannot_say_is_refused_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIParamError) as refused:
        chat_body(ResponsesRequest.model_validate({"model": "m", **body}), [])
    assert refused.value.param == param


def test_models_setting_lists_the_default_first_and_each_once() -> None:
    settings = Settings(openai_model="gpt-4o-mini", models=" llama3 , gpt-4o-mini,,qwen3 ")
    assert settings.model_list() == ["gpt-4o-mini", "llama3", "qwen3"]


if __name__ == "__main__":
    # Rewrite the golden transcripts from the current code (then read the diff before committing it).
    for name, make in CASES.items():
        (GOLDEN / name).write_bytes(make())
        print(f"wrote {GOLDEN / name}", file=sys.stderr)
