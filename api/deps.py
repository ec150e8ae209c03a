"""FastAPI dependencies: the process-wide clients made in the app's lifespan."""

from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request

from api.admission import Admission
from api.auth import Authenticator
from api.hub import StreamHub
from contract.settings import Settings
from contract.store import StreamStore


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    store: StreamStore
    queue: ArqRedis
    hub: StreamHub
    auth: Authenticator
    admission: Admission


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread handoff on every request.
    state: AppState = request.app.state.chatrelay
    return state


StateDep = Annotated[AppState, Depends(get_state)]
