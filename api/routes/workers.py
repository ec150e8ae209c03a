"""`/api/workers`: the live workers, from their heartbeats in Redis (`contract.workers`)."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import CallerDep
from api.deps import StateDep
from api.errors import NotFoundError
from contract.workers import WorkerInfo, WorkerRegistry

router = APIRouter(prefix="/api/workers", tags=["workers"])


class WorkerList(BaseModel):
    workers: list[WorkerInfo]


@router.get("", response_model=WorkerList)
async def list_workers(state: StateDep, caller: CallerDep) -> WorkerList:
    """Workers whose heartbeat is current, oldest first, with their running and finished job counts. Hosts and
    pids are for operators: once admin keys are configured, only an admin key sees this (others get 404)."""
    if state.auth.has_admin_keys and not caller.admin:
        raise NotFoundError("no API route /api/workers")
    registry = WorkerRegistry(state.store.redis, state.store.keys)
    return WorkerList(workers=await registry.live())
