# One image for the API and the worker; compose.yaml picks the command.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/ ./
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund && npm run build; else mkdir -p dist; fi

FROM python:3.11-slim-bookworm
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY contract/ contract/
COPY api/ api/
COPY worker/ worker/
COPY cli/ cli/
COPY demo_upstream/ demo_upstream/
RUN pip install .
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --system --uid 10001 chatrelay
USER chatrelay
# 8000: the API; 9101: a worker's Prometheus metrics (CHATRELAY_WORKER_METRICS_PORT).
EXPOSE 8000 9101
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "5", "--proxy-headers"]
