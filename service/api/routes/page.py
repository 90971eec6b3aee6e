"""The web page: `/` serves service/static/index.html; its scripts and styles are under /static.

The page is plain HTML, CSS and JavaScript modules (no build step) and talks only to /v1.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[2] / "static"
# The page loads only its own files; videos and downloads are blob: URLs it made itself.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The single page."""
    return FileResponse(
        STATIC / "index.html",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
    )


def mount(app: FastAPI) -> None:
    """Serve `/` and the page's files under `/static`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
