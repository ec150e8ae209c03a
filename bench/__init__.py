"""`python -m bench` (`make bench`): chatrelay against the naive design, side by side on one machine.

Both designs stream from the same demo upstream (`demo_upstream`, with its `stamp` switch recording when
each token went out). The naive design is `bench.naive`: a FastAPI `StreamingResponse` forwarding the openai
SDK stream inside the request. chatrelay runs as real processes: redis-server, an arq worker and the API.
The load client (`bench.client`, `bench.load`) timestamps every token as it arrives and checks that every
reassembled answer equals what the upstream sent; a run that fails that check is void.
"""
