"""A local OpenAI-compatible chat server: the demo model of `make dev` and the upstream of the tests.

It speaks `POST /v1/chat/completions` with `stream: true` in the real chunk format (role chunk, content
deltas, finish chunk, usage chunk, `[DONE]`). Neither production process imports it.
"""
