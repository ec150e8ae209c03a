"""`/v1/chat/completions` and `/v1/models` with the unmodified openai-python SDK, and OpenAI's error shape on every
`/v1` error; texts compared byte for byte with the demo upstream's record."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from cli.processes import free_port
from tests.conftest import API_KEY, AUTH, Stack, upstream_record

TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
MESSAGES: list[Any] = [{"role": "user", "content": "what is the weather and the time?"}]


@pytest.fixture
async def oai(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{stack.api_a}/v1", api_key=API_KEY, max_retries=0, timeout=60) as c:
        yield c


def _calls(message: Any) -> list[dict[str, str]]:
    return [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls or []]


@pytest.mark.parametrize(
    ("scene", "field"),
    [
        ("parallel_tools", None),
        ("reasoning", "reasoning_content"),
        ("reasoning&reasoning_field=reasoning", "reasoning"),
    ],
    ids=["parallel-tools", "reasoning_content", "reasoning"],
)
async def test_chat_stream_accumulates_to_the_upstream_message(
    oai: openai.AsyncOpenAI, stack: Stack, scene: str, field: str | None
) -> None:
    model = f"chatrelay-demo?scene={scene}&tokens=40&delay_ms=2"
    async with oai.chat.completions.stream(
        model=model, messages=MESSAGES, tools=TOOLS, stream_options={"include_usage": True}
    ) as stream:
        chunks = [event.chunk async for event in stream if event.type == "chunk"]
        final = await stream.get_final_completion()
    stream_id = chunks[0].id.removeprefix("chatcmpl-")
    record = await upstream_record(stack, stream_id)
    message = final.choices[0].message
    assert message.content == record["sent_text"]
    assert _calls(message) == record["sent_tool_calls"]
    if field is not None:
        assert getattr(message, field) == record["sent_reasoning"] != ""
        other = "reasoning" if field == "reasoning_content" else "reasoning_content"
        assert getattr(message, other, None) is None
    assert final.choices[0].finish_reason == ("tool_calls" if scene == "parallel_tools" else "stop")
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert final.usage is not None
    assert final.usage.completion_tokens > 0

    # The same request without `stream` gives the same message.
    whole = await oai.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, tools=TOOLS)
    completion = whole.parse()
    again = completion.choices[0].message
    assert (again.content, _calls(again)) == (message.content, _calls(message))
    if field is not None:
        assert getattr(again, field) == getattr(message, field)
    assert completion.id == f"chatcmpl-{whole.headers['x-chatrelay-stream-id']}"


async def test_chat_stream_names_its_stream_and_is_data_lines_only(stack: Stack) -> None:
    body = {"model": "chatrelay-demo?tokens=20&delay_ms=1", "messages": MESSAGES, "stream": True}
    async with (
        httpx.AsyncClient(base_url=stack.api_a, headers=AUTH, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        raw = (await response.aread()).decode()
    stream_id = response.headers["x-chatrelay-stream-id"]
    blocks = raw.split("\n\n")
    assert blocks[-1] == ""
    assert blocks[-2] == "data: [DONE]"
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks[:-1])
    # The native API reads the same answer.
    async with httpx.AsyncClient(base_url=stack.api_b, headers=AUTH, timeout=30) as native:
        message = (await native.get(f"/api/streams/{stream_id}/message")).json()
    assert message["message"]["content"] == (await upstream_record(stack, stream_id))["sent_text"]


async def test_extra_body_reaches_the_upstream_at_the_top_level(oai: openai.AsyncOpenAI, stack: Stack) -> None:
    completion = await oai.chat.completions.create(
        model="chatrelay-demo?tokens=3&delay_ms=0", messages=MESSAGES, extra_body={"top_k": 5, "min_p": 0.1}
    )
    body = (await upstream_record(stack, completion.id.removeprefix("chatcmpl-")))["body"]
    assert (body["top_k"], body["min_p"]) == (5, 0.1)


async def test_upstream_failure_is_an_openai_error(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as rejected:
        await oai.chat.completions.create(model="chatrelay-demo?status=400", messages=MESSAGES)
    assert rejected.value.code == "upstream_rejected"
    stream = await oai.chat.completions.create(
        model="chatrelay-demo?tokens=50&error_after=5&delay_ms=1", messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError, match="upstream_error"):
        async for _chunk in stream:
            pass


async def test_models_lists_the_default_model(oai: openai.AsyncOpenAI) -> None:
    models = await oai.models.list()
    assert [m.id for m in models.data] == ["chatrelay-demo"]
    assert (await oai.models.retrieve("chatrelay-demo")).owned_by == "chatrelay"
    with pytest.raises(openai.NotFoundError):
        await oai.models.retrieve("gpt-nothing")


def _assert_openai_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def test_errors_have_openai_shape_401_404_422(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_a, timeout=30) as client:
        bad_key = {"Authorization": "Bearer not-a-key-of-this-deployment"}
        assert _assert_openai_shape(await client.get("/v1/models", headers=bad_key), 401)["code"] == "invalid_api_key"
        missing = await client.get("/v1/responses/resp_AAAAAAAAAAAAAAAAAAAAAA", headers=AUTH)
        assert _assert_openai_shape(missing, 404)["type"] == "invalid_request_error"
        assert _assert_openai_shape(await client.get("/v1/embeddings", headers=AUTH), 404)
        not_json = await client.post("/v1/responses", headers=AUTH, json={"model": "m"})
        assert _assert_openai_shape(not_json, 422)["param"] == "input"
        tool = {"model": "m", "input": "x", "tools": [{"type": "web_search"}]}
        web = _assert_openai_shape(await client.post("/v1/responses", headers=AUTH, json=tool), 422)
        assert web["param"] == "tools.0.type"
        chat = {"model": "m", "messages": [{"role": "robot", "content": "x"}]}
        assert _assert_openai_shape(await client.post("/v1/chat/completions", headers=AUTH, json=chat), 422)
        odd = {"model": "m", "messages": [{"role": "user", "content": "x"}], "extra_body": "x", "top_k": 1}
        assert _assert_openai_shape(await client.post("/v1/chat/completions", headers=AUTH, json=odd), 422)
        # A lone surrogate is valid JSON but not Unicode: refused naming the field, wherever it is.
        surrogate = b'{"model": "m", "input": "x", "metadata": {"k": "\\ud800"}}'
        headers = {**AUTH, "Content-Type": "application/json"}
        bad = await client.post("/v1/responses", headers=headers, content=surrogate)
        assert _assert_openai_shape(bad, 422)["param"] == "metadata.k"


async def test_a_strangers_response_is_404(stack: Stack) -> None:
    async with openai.AsyncOpenAI(base_url=f"{stack.api_a}/v1", api_key=API_KEY, max_retries=0) as owner:
        created = await owner.responses.create(model="chatrelay-demo?tokens=3", input="mine", background=True)
    # Anyone else (here an anonymous browser session) is told it does not exist, on every route.
    async with httpx.AsyncClient(base_url=stack.api_b, timeout=30) as stranger:
        for method, path in [
            ("GET", f"/v1/responses/{created.id}"),
            ("GET", f"/v1/responses/{created.id}?stream=true"),
            ("GET", f"/v1/responses/{created.id}/input_items"),
            ("POST", f"/v1/responses/{created.id}/cancel"),
            ("DELETE", f"/v1/responses/{created.id}"),
        ]:
            answer = await stranger.request(method, path, headers={"Content-Type": "application/json"})
            assert _assert_openai_shape(answer, 404)
        previous = {"model": "m", "input": "x", "previous_response_id": created.id}
        answer = await stranger.post("/v1/responses", json=previous)
        assert _assert_openai_shape(answer, 404)["param"] == "previous_response_id"


@pytest.fixture(scope="module")
def limited_api(stack: Stack) -> tuple[str, str]:
    """A third API process whose own key may have one answer queued or running at a time."""
    key = "ck-limited-" + API_KEY[-16:]
    env = {"CHATRELAY_API_KEYS": f"tests:{API_KEY},limited:{key}", "CHATRELAY_MAX_ACTIVE_STREAMS_PER_OWNER": "1"}
    return stack.group.start_api(free_port(), "api-limited", env), key


async def test_429_has_openai_shape(limited_api: tuple[str, str]) -> None:
    url, key = limited_api
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as limited:
        first = await limited.responses.create(
            model="chatrelay-demo?tokens=5000&delay_ms=10", input="x", background=True
        )
        try:
            with pytest.raises(openai.RateLimitError) as refused:
                await limited.responses.create(model="chatrelay-demo?tokens=3", input="y", background=True)
            assert refused.value.code == "rate_limit_exceeded"
            assert refused.value.response.headers["retry-after"]
            error = refused.value.body
            assert isinstance(error, dict)
            assert set(error) == {"message", "type", "param", "code"}
        finally:
            await limited.responses.cancel(first.id)
        async with asyncio.timeout(30):  # the slot frees once the cancel has ended it
            while True:
                try:
                    done = await limited.responses.create(model="chatrelay-demo?tokens=3", input="z")
                    break
                except openai.RateLimitError:
                    await asyncio.sleep(0.1)
        assert done.status == "completed"
