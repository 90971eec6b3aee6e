"""Registering webhooks: refused URLs are 422s naming `url` (through the real server, whose
operator allow-lists 127.0.0.1 and http, and in-process under the default rules), and a
webhook's health through the API, the CLI and PATCH.

Nothing here registers a webhook at anything but 127.0.0.1: the refused URLs are loopback
spellings, and a refused URL is never stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.client import APIError, Client
from service.main import create_app
from service.settings import Settings
from tests.service.conftest import BOB, Server

RLDOJO = [sys.executable, "-c", "from service.cli import main; main()"]

# (URL, part of the reason): each stays refused although the server allows 127.0.0.1 and http.
REFUSED = [
    ("http://127.0.0.1:18504/x\r\nInjected: 1", "control character or space U+000D"),
    ("http://127.0.0.1:9/\x00", "control character or space U+0000"),
    ("http://user:pass@127.0.0.1:9/", "user info"),
    ("http://0.0.0.0:9/", "0.0.0.0 is the unspecified address"),
    ("http://2130706433:9/", "2130706433 is an unusual spelling of 127.0.0.1"),
    ("http://127.1:9/", "127.1 is an unusual spelling of 127.0.0.1"),
    ("http://0x7f.1:9/", "0x7f.1 is an unusual spelling of 127.0.0.1"),
    ("http://0177.0.0.1:9/", "0177.0.0.1 is an unusual spelling of 127.0.0.1"),
    ("http://[::ffff:127.0.0.1]:9/", "::ffff:127.0.0.1 carries IPv4 127.0.0.1"),
    ("http://[::1]:9/", "::1 is a loopback address"),
    ("http://[::]:9/", ":: is the unspecified address"),
]


def test_every_ssrf_spelling_and_crlf_is_a_422_naming_url(bob: Client) -> None:
    before = [hook.id for hook in bob.webhooks()]
    for url, reason in REFUSED:
        with pytest.raises(APIError) as refused:
            bob.add_webhook(url)
        assert refused.value.status == 422, url
        (problem,) = refused.value.detail
        assert problem["loc"] == ["body", "url"] and reason in problem["msg"], problem
    assert [hook.id for hook in bob.webhooks()] == before  # none was stored


def _rldojo(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RLDOJO_URL": server.url, "RLDOJO_TOKEN": BOB, "COLUMNS": "200"}
    return subprocess.run([*RLDOJO, *args], capture_output=True, text=True, timeout=120, env=env)


def test_a_webhooks_health_through_the_cli_disable_and_enable(server: Server, bob: Client) -> None:
    refused = _rldojo(server, "webhooks", "add", "http://127.1:9/hook")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "body.url: webhook URL refused" in refused.stderr
    hook = bob.add_webhook("http://127.0.0.1:9/hook")  # nothing listens there
    try:
        assert bob.webhook(hook.id).enabled and bob.webhook(hook.id).secret is None
        listed = _rldojo(server, "webhooks", "list")
        assert f"{hook.id}  http://127.0.0.1:9/hook  enabled" in listed.stdout, listed.stdout
        disabled = _rldojo(server, "webhooks", "disable", hook.id)
        assert disabled.returncode == 0 and "DISABLED" in disabled.stdout
        state = bob.webhook(hook.id)
        assert not state.enabled and state.disabled_reason == "disabled by its owner"
        assert state.disabled_at is not None
        log = _rldojo(server, "webhooks", "log", hook.id)
        assert "DISABLED" in log.stdout and "disabled by its owner" in log.stdout
        assert f"re-enable it: rldojo webhooks enable {hook.id}" in log.stdout
        enabled = _rldojo(server, "webhooks", "enable", hook.id)
        assert enabled.returncode == 0 and f"{hook.id} enabled" in enabled.stdout
        assert bob.webhook(hook.id).enabled and bob.webhook(hook.id).consecutive_failures == 0
    finally:
        deleted = _rldojo(server, "webhooks", "delete", hook.id)  # as jobs say it
    assert deleted.returncode == 0 and deleted.stdout == f"deleted {hook.id}\n", deleted.stderr
    with pytest.raises(APIError) as missing:
        bob.update_webhook(hook.id, enabled=True)
    assert missing.value.status == 404
    again = _rldojo(server, "webhooks", "rm", hook.id)  # the old name still works, and says 404
    assert again.returncode == 1 and "Traceback" not in again.stderr and "404" in again.stderr


@pytest.fixture()
def strict_app(tmp_path: Path) -> Iterator[TestClient]:
    """The app under the default rules, in-process and without its lifespan: no Ray, no
    sender, so nothing is ever delivered from here."""
    app = create_app(Settings(data_dir=tmp_path / "strict"))
    yield TestClient(app)
    app.state.store.close()


def test_the_default_rules_refuse_a_name_resolving_to_loopback_and_plain_http(
    strict_app: TestClient,
) -> None:
    for url, reason in [
        ("https://localhost/hook", "localhost resolves to 127.0.0.1, a loopback address"),
        ("https://LOCALHOST.:8443/hook", "localhost resolves to 127.0.0.1, a loopback address"),
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1:9/hook", "http is not allowed: use https"),
    ]:
        answer = strict_app.post("/v1/webhooks", json={"url": url})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"] == [
            {"loc": ["body", "url"], "msg": f"webhook URL refused: {reason}"}
        ]
    assert strict_app.get("/v1/webhooks").json() == []


def test_enabling_again_checks_the_url_under_the_rules_of_now(strict_app: TestClient) -> None:
    store = strict_app.app.state.store  # type: ignore[attr-defined]
    # registered while the operator allowed loopback; the allow-list has gone since
    hook = store.create_webhook(owner="local", url="http://127.0.0.1:9/", secret="s" * 16)
    off = strict_app.patch(f"/v1/webhooks/{hook.id}", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert off.json()["disabled_reason"] == "disabled by its owner"
    on = strict_app.patch(f"/v1/webhooks/{hook.id}", json={"enabled": True})
    assert on.status_code == 422 and on.json()["detail"][0]["loc"] == ["body", "url"]
    assert strict_app.get(f"/v1/webhooks/{hook.id}").json()["enabled"] is False
    bad = strict_app.patch(f"/v1/webhooks/{hook.id}", json={"enabled": "sometimes"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "enabled"]
