"""`/api/workers`: the live workers, from their heartbeats in Redis (`contract.workers`)."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import StateDep
from contract.workers import WorkerInfo, WorkerRegistry

router = APIRouter(prefix="/api/workers", tags=["workers"])


class WorkerList(BaseModel):
    workers: list[WorkerInfo]


@router.get("", response_model=WorkerList)
async def list_workers(state: StateDep) -> WorkerList:
    """Workers whose heartbeat is current, oldest first, with their running and finished job counts."""
    registry = WorkerRegistry(state.store.redis, state.store.keys)
    return WorkerList(workers=await registry.live())
