"""The API serves the built front end at `/` and answers every `/api/*` path itself, never with the SPA shell."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import api.main
from contract.settings import Settings

SHELL = '<!doctype html><html><body><div id="app"></div><script src="/assets/app.js"></script></body></html>'


@pytest.fixture
async def spa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The app over a stand-in `frontend/dist`; no lifespan runs, so these routes need no Redis."""
    (tmp_path / "index.html").write_text(SHELL)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("console.log('app')")
    monkeypatch.setattr(api.main, "FRONTEND_DIST", tmp_path)
    app = api.main.create_app(Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/index.html", "/#conversation-id"])
async def test_frontend_shell_is_served_at_root(spa: httpx.AsyncClient, path: str) -> None:
    response = await spa.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == SHELL


async def test_frontend_assets_are_served(spa: httpx.AsyncClient) -> None:
    response = await spa.get("/assets/app.js")
    assert response.status_code == 200
    assert response.text == "console.log('app')"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/"),
        ("GET", "/api/nothing-here"),
        ("GET", "/api/streams/AAAAAAAAAAAAAAAAAAAAAA/nothing"),
        ("GET", "/api/assets/app.js"),
        ("POST", "/api/nothing-here"),
        ("DELETE", "/api/streams"),
    ],
)
async def test_frontend_never_answers_api_paths(spa: httpx.AsyncClient, method: str, path: str) -> None:
    # A browser navigation asks for HTML; it still gets the API's JSON error, not the shell.
    response = await spa.request(method, path, headers={"Accept": "text/html"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "error" in response.json()
    assert SHELL not in response.text


async def test_frontend_absent_serves_api_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.main, "FRONTEND_DIST", tmp_path / "missing")
    app = api.main.create_app(Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/")
        assert response.status_code == 404
        assert (await client.get("/api/nothing-here")).json()["error"]["code"] == "not_found"
