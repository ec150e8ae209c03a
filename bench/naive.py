"""The naive design the benchmark compares against: what most tutorials show.

One FastAPI process calls the model with the openai SDK inside the request and forwards each token as an
SSE event through a `StreamingResponse`. A reload loses the answer; nothing is stored. Run it with
`uvicorn bench.naive:app` and `OPENAI_BASE_URL` pointing at the demo upstream.
"""

import os
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

# The demo upstream keys its record of each request (and its emit timestamps) by this header.
CHAT_ID_HEADER = "X-Chatrelay-Stream-Id"

app = FastAPI(title="naive streaming baseline", docs_url=None, redoc_url=None)
client = openai.AsyncOpenAI(base_url=os.environ.get("OPENAI_BASE_URL"), api_key="bench", max_retries=0)


class Message(BaseModel):
    role: str
    content: str


class NaiveChat(BaseModel):
    id: str
    model: str
    messages: list[Message]


@app.post("/chat")
async def stream_chat(chat: NaiveChat) -> StreamingResponse:
    """Answer a chat as SSE, forwarding the model's stream token by token."""

    async def events() -> AsyncIterator[bytes]:
        messages: Any = [m.model_dump() for m in chat.messages]
        stream = await client.chat.completions.create(
            model=chat.model, messages=messages, stream=True, extra_headers={CHAT_ID_HEADER: chat.id}
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices or []:
                    if choice.delta is not None and choice.delta.content:
                        yield b"event: delta\ndata: " + orjson.dumps({"text": choice.delta.content}) + b"\n\n"
        yield b'event: done\ndata: {"finish_reason":"stop"}\n\n'

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@app.get("/healthz")
async def get_health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}
