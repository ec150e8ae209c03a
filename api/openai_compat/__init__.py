"""OpenAI's API under `/v1`: Responses (background mode with resume), Chat Completions and Models.

Pure translators, each tested with golden transcripts: `responses_request` (a Responses request into the Chat
Completions request the worker sends), `responses_events` (stored entries into Responses events and the Response
object), `chat_chunks` (stored entries into `chat.completion.chunk` frames and the `chat.completion` object);
`errors` (OpenAI's error shape, for every route of the surface); `records` and `follow` (what a response keeps
beside its stream, and waiting for a stream's end through the process's hub). The routes are `api.routes.openai_*`.
"""
