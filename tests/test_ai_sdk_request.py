"""UI messages into Chat Completions messages (`api.ai_sdk.request`), table by table."""

from typing import Any

import pytest
from pydantic import ValidationError

from api.ai_sdk.request import TranslationError, UiChatRequest, UiMessage, chat_messages, conversation
from contract.chat_request import ChatRequest

PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0xLjQK"
WAV = "data:audio/wav;base64,UklGRiQAAABXQVZF"


def user(*parts: dict[str, Any], id: str = "u1") -> dict[str, Any]:
    return {"id": id, "role": "user", "parts": list(parts)}


def assistant(*parts: dict[str, Any], id: str = "a1") -> dict[str, Any]:
    return {"id": id, "role": "assistant", "parts": list(parts)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def weather(state: str, **extra: Any) -> dict[str, Any]:
    return {"type": "tool-get_weather", "toolCallId": "call_1", "state": state, "input": {"city": "Paris"}, **extra}


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}

TABLE: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    ("one text part is a string", [user(text("Hi 🙂\nthere"))], [{"role": "user", "content": "Hi 🙂\nthere"}]),
    (
        "text and an image are parts",
        [user(text("What is it?"), {"type": "file", "mediaType": "image/png", "url": PNG, "filename": "a.png"})],
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": PNG}}],
            }
        ],
    ),
    (
        "an image by URL",
        [user({"type": "file", "mediaType": "image/jpeg", "url": "https://example.com/a.jpg"})],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]}],
    ),
    (
        "a PDF and WAV audio",
        [
            user(
                {"type": "file", "mediaType": "application/pdf", "url": PDF, "filename": "r.pdf"},
                {"type": "file", "mediaType": "audio/wav", "url": WAV},
            )
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"filename": "r.pdf", "file_data": PDF}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
                ],
            }
        ],
    ),
    (
        "system text parts are joined",
        [{"id": "s", "role": "system", "parts": [text("Be "), text("brief.")]}, user(text("Hi"))],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    ),
    (
        "reasoning, sources, data and files of the assistant are dropped",
        [
            user(text("Hi")),
            assistant(
                {"type": "step-start"},
                {"type": "reasoning", "text": "hmm", "state": "done"},
                text("Hello"),
                {"type": "source-url", "sourceId": "s", "url": "https://example.com"},
                {"type": "data-weather", "id": "d", "data": {"x": 1}},
                text(" there"),
            ),
        ],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}],
    ),
    (
        "a tool call with its result, then the text of the next step",
        [
            user(text("Weather?")),
            assistant(
                {"type": "step-start"},
                text("Let me check."),
                weather("output-available", output={"temp": 21, "sky": "clear"}),
                {"type": "step-start"},
                text("It is 21 °C."),
            ),
        ],
        [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp":21,"sky":"clear"}'},
            {"role": "assistant", "content": "It is 21 °C."},
        ],
    ),
    (
        "a string output is sent as it is; an error's text; a dynamic tool",
        [
            user(text("Go")),
            assistant(
                weather("output-available", output="sunny"),
                {
                    "type": "dynamic-tool",
                    "toolName": "mcp_search",
                    "toolCallId": "call_2",
                    "state": "output-error",
                    "input": {"q": "x"},
                    "errorText": "timed out",
                },
            ),
        ],
        [
            {"role": "user", "content": "Go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    CALL,
                    {"id": "call_2", "type": "function", "function": {"name": "mcp_search", "arguments": '{"q":"x"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "timed out"},
        ],
    ),
    (
        "a denied call says so",
        [user(text("Go")), assistant(weather("output-denied", approval={"id": "ap", "approved": False}))],
        [
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Tool execution denied."},
        ],
    ),
    (
        "calls without a result are dropped (and a step left empty with them)",
        [
            user(text("Go")),
            assistant(
                {"type": "step-start"},
                weather("input-available"),
                {"type": "step-start"},
                text("Partial"),
                weather("input-streaming"),
            ),
        ],
        [{"role": "user", "content": "Go"}, {"role": "assistant", "content": "Partial"}],
    ),
]


@pytest.mark.parametrize(("name", "ui", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_chat_messages(name: str, ui: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    messages = chat_messages([UiMessage.model_validate(m) for m in ui])
    assert messages == expected
    ChatRequest.model_validate({"messages": messages})  # what the worker is given is a valid request


ERRORS: list[tuple[str, list[dict[str, Any]], str]] = [
    ("a text part without text", [user({"type": "text"})], "messages.0.parts.0.text"),
    ("a part without a type", [user({"text": "x"})], "messages.0.parts.0.type"),
    ("a user message with nothing to send", [user({"type": "data-x", "data": 1})], "messages.0.parts"),
    (
        "a PDF by URL",
        [user({"type": "file", "mediaType": "application/pdf", "url": "https://example.com/a.pdf"})],
        "messages.0.parts.0.url",
    ),
    (
        "a file type Chat Completions has no part for",
        [user(text("x"), {"type": "file", "mediaType": "text/csv", "url": "data:text/csv;base64,YQ=="})],
        "messages.0.parts.1.mediaType",
    ),
    (
        "a tool part without its id",
        [user(text("x")), assistant({"type": "tool-t", "state": "output-available", "output": 1})],
        "messages.1.parts.0.toolCallId",
    ),
    (
        "an output JSON cannot carry",
        [user(text("x")), assistant(weather("output-available", output=2**70))],
        "messages.1.parts.0.output",
    ),
    ("only an assistant message with nothing in it", [assistant({"type": "step-start"})], "messages"),
]


@pytest.mark.parametrize(("name", "ui", "path"), ERRORS, ids=[t[0] for t in ERRORS])
def test_chat_messages_errors_name_the_field(name: str, ui: list[dict[str, Any]], path: str) -> None:
    with pytest.raises(TranslationError) as caught:
        chat_messages([UiMessage.model_validate(m) for m in ui])
    assert caught.value.path == path


def body(messages: list[dict[str, Any]], **fields: Any) -> UiChatRequest:
    return UiChatRequest.model_validate({"id": "chat-1", "messages": messages, **fields})


HISTORY = [user(text("one"), id="u1"), assistant(text("A1"), id="a1"), user(text("two"), id="u2")]

CONVERSATIONS: list[tuple[str, UiChatRequest, list[str], str | None]] = [
    ("a submit answers everything", body(HISTORY), ["u1", "a1", "u2"], None),
    (
        "a submit after tool results continues the assistant message",
        body([*HISTORY, assistant(weather("output-available", output=1), id="a2")], messageId="a2"),
        ["u1", "a1", "u2", "a2"],
        "a2",
    ),
    (
        "regenerate the last assistant message (a client that did not trim it)",
        body([*HISTORY, assistant(text("A2"), id="a2")], trigger="regenerate-message"),
        ["u1", "a1", "u2"],
        None,
    ),
    (
        "regenerate a given one",
        body(HISTORY, trigger="regenerate-message", messageId="a1"),
        ["u1"],
        None,
    ),
    (
        "regenerate as the AI SDK sends it: already trimmed",
        body(HISTORY, trigger="regenerate-message", messageId="a9"),
        ["u1", "a1", "u2"],
        None,
    ),
    (
        "regenerate from a user message keeps it",
        body(HISTORY, trigger="regenerate-message", messageId="u1"),
        ["u1"],
        None,
    ),
]


@pytest.mark.parametrize(("name", "request_body", "ids", "continues"), CONVERSATIONS, ids=[c[0] for c in CONVERSATIONS])
def test_conversation(name: str, request_body: UiChatRequest, ids: list[str], continues: str | None) -> None:
    messages, continued = conversation(request_body)
    assert [m.id for m in messages] == ids
    assert continued == continues


def test_conversation_regenerating_everything_is_an_error() -> None:
    with pytest.raises(TranslationError):
        conversation(body([assistant(text("A"), id="a1")], trigger="regenerate-message"))


@pytest.mark.parametrize("chat_id", ["", ".", "..", "a/b", "a b", "x" * 129, "é"])
def test_chat_id_must_fit_a_path_and_a_key(chat_id: str) -> None:
    with pytest.raises(ValidationError):
        body([user(text("x"))], id=chat_id)


def test_options_are_the_other_fields() -> None:
    request = body([user(text("x"))], model="m", temperature=0.5, trigger="submit-message", messageId=None)
    assert request.options() == {"model": "m", "temperature": 0.5}
    assert body([user(text("x"))], id="3f1c-ab_9.x:y~z").id == "3f1c-ab_9.x:y~z"
