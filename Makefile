# One definition of each check; CI (.ci/run) calls these targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FRONTEND_STAMP := frontend/node_modules/.installed
# The real, unmodified clients the tests drive (each pinned in its own lockfile): the openai npm client against
# /v1, the AI SDK (ai 5.0.0, 6.x) and the AI SDK example page against /api/chat.
CLIENT_DIRS := tests/clients/openai-node tests/clients/ai-sdk examples/ai-sdk-svelte
CLIENT_STAMPS := $(addsuffix /node_modules/.installed,$(CLIENT_DIRS))

.DEFAULT_GOAL := help
.PHONY: help install clients dev lint format typecheck test test-python test-frontend frontend bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the Python packages

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $(FRONTEND_STAMP)

%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && npm ci --no-audit --no-fund
	touch $@

clients: $(CLIENT_STAMPS) ## npm ci: the pinned openai npm client, the AI SDK clients and the AI SDK example

frontend: $(FRONTEND_STAMP) ## Build the Svelte front end into frontend/dist
	cd frontend && npm run build

dev: install ## Run the whole service on http://127.0.0.1:8000 (local Redis; demo model without an API key)
	@if [ -f frontend/package.json ] && command -v npm >/dev/null; then $(MAKE) frontend; \
	 else echo "chatrelay: npm not found or no front end yet: serving the API only"; fi
	$(BIN)/chatrelay dev

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format the Python code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict over source and tests
	$(BIN)/mypy contract api worker demo_upstream cli bench tests

test-python: install clients ## pytest: the real stack (redis-server, uvicorn, arq, demo upstream; Node clients)
	$(BIN)/pytest -q

test-frontend: $(FRONTEND_STAMP) ## svelte-check, vitest, then Playwright in Chromium against the real stack
	cd frontend && npm run check && npm test && npm run build && npm run test:e2e

test: lint typecheck test-python ## Everything CI runs: lint, types, Python tests, front-end tests
	@if [ -f frontend/package.json ]; then $(MAKE) test-frontend; fi

# The benchmark installs its peer's npm packages itself (`npm ci` in bench/peers/resumable_stream, bench/peer.py),
# so that `python -m bench --quick` in the tests works on a fresh clone too.
bench: install ## Benchmark chatrelay against the naive design and resumable-stream (writes bench/results/)
	$(BIN)/python -m bench

clean: ## Remove the environment and build outputs
	rm -rf $(VENV) frontend/node_modules frontend/dist $(addsuffix /node_modules,$(CLIENT_DIRS)) \
		examples/ai-sdk-svelte/dist bench/peers/resumable_stream/node_modules .mypy_cache .ruff_cache .pytest_cache
