"""Security headers on every answer of the real server, and the API docs served from the
installed Swagger UI with nothing loaded from elsewhere."""

from __future__ import annotations

import re

import httpx
import pytest

from service.security import SECURITY_HEADERS
from tests.service.conftest import ALICE, Server

AUTH = {"Authorization": f"Bearer {ALICE}"}
ROUTES = [
    ("GET", "/healthz", {}, None, 200),
    ("GET", "/v1/jobs", AUTH, None, 200),
    ("GET", "/v1/algorithms", AUTH, None, 200),
    ("GET", "/", {}, None, 200),
    ("GET", "/static/js/app.js", {}, None, 200),
    ("GET", "/docs", {}, None, 200),
    ("GET", "/openapi.json", {}, None, 200),
    ("GET", "/v1/jobs", {}, None, 401),
    ("GET", "/v1/jobs/nosuchjob", AUTH, None, 404),
    ("POST", "/v1/jobs", AUTH, {"algorithm": []}, 422),
    ("POST", "/v1/jobs", AUTH, {"pad": "x" * 70_000}, 413),
    ("GET", "/no/such/route", {}, None, 404),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "code"), ROUTES)
def test_every_answer_carries_the_security_headers(
    server: Server, method: str, path: str, headers: dict, body: object, code: int
) -> None:
    answer = httpx.request(method, f"{server.url}{path}", headers=headers, json=body, timeout=60)
    assert answer.status_code == code, answer.text[:300]
    for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert answer.headers.get_list(name) == [SECURITY_HEADERS[name]], name
    policies = answer.headers.get_list("Content-Security-Policy")
    assert len(policies) == 1 and "frame-ancestors 'none'" in policies[0]
    if path not in ("/", "/docs"):
        assert policies[0] == SECURITY_HEADERS["Content-Security-Policy"]


def test_the_docs_load_only_from_the_server(server: Server) -> None:
    answer = httpx.get(f"{server.url}/docs", timeout=60)
    assert answer.status_code == 200 and "swagger-ui" in answer.text
    assert re.findall(r"https?://", answer.text) == []  # every URL is the server's own path
    policy = answer.headers["Content-Security-Policy"]
    assert "http" not in policy and "script-src 'self' 'sha256-" in policy
    assets = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert {asset.rsplit(".", 1)[-1] for asset in assets} == {"js", "css", "png"}
    for asset in assets:
        loaded = httpx.get(f"{server.url}{asset}", timeout=60)
        assert loaded.status_code == 200 and len(loaded.content) > 100, asset
    assert "/openapi.json" in answer.text
    assert httpx.get(f"{server.url}/redoc", timeout=60).status_code == 404
