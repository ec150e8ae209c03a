"""The contract the API and the worker share: settings, Redis keys, events, and the stream store.

Imports neither FastAPI nor openai (tests/test_import_boundaries.py checks it), so both sides and the CLI
can depend on it without pulling in the other side's stack.
"""
