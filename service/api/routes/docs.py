"""The API docs at /docs: Swagger UI from the installed `fastapi-offline` package, no CDN.

FastAPI's own /docs loads Swagger UI's script and styles from a CDN and its favicon from
FastAPI's site; here they are served under /docs/assets from the copy of Swagger UI 5 (the
first to read OpenAPI 3.1, which FastAPI writes) that `fastapi-offline` ships, and the page's
Content-Security-Policy allows scripts only from the service plus the one inline script that
starts Swagger UI (by its hash), so the docs work offline and load nothing from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# Swagger UI's bundle, styles and favicon, as the package installs them beside its code.
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"


def docs_page(title: str, openapi_url: str) -> HTMLResponse:
    """Swagger UI on `openapi_url`, its files from `ASSETS`, with a CSP that allows only them."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    html = bytes(page.body).decode()
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{_sha256(script)}'" for script in inline)
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def mount(app: FastAPI) -> None:
    """Serve /docs and its assets; the app is built with FastAPI's own docs turned off."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return docs_page(f"{app.title} - API docs", app.openapi_url or "/openapi.json")

    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs-assets")
