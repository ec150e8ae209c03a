"""Liveness and readiness probes."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api.deps import StateDep
from api.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def get_health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def get_readiness(state: StateDep) -> dict[str, str] | JSONResponse:
    """Redis answers: this process can take traffic."""
    try:
        await state.store.redis.ping()
    except RedisError as exc:
        return JSONResponse(error_body("unavailable", f"Redis is not reachable ({type(exc).__name__})"), 503)
    return {"status": "ready"}
