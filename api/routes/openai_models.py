"""`GET /v1/models`: the models this deployment serves, in OpenAI's list shape (Open WebUI, LibreChat and the
SDKs' `models.list()` discover models with it)."""

from typing import Any

from fastapi import APIRouter

from api.auth import CallerDep
from api.deps import StateDep
from api.openai_compat.errors import OpenAIRoute
from api.routes.openai_common import not_found

router = APIRouter(prefix="/v1/models", tags=["openai"], route_class=OpenAIRoute)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "chatrelay"}


@router.get("")
async def list_models(state: StateDep, caller: CallerDep) -> dict[str, Any]:
    """The default model (`OPENAI_MODEL`) and those `CHATRELAY_MODELS` lists."""
    return {"object": "list", "data": [_model(m) for m in state.settings.model_list()]}


@router.get("/{model:path}")
async def retrieve_model(model: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    """One of the listed models."""
    if model not in state.settings.model_list():
        raise not_found(f"The model '{model[:256]}' does not exist", "model")
    return _model(model)
