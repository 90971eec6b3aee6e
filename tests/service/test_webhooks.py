"""Webhook delivery in-process: a real `Sender` on a real store (SQLite, PostgreSQL) POSTing
to receivers on 127.0.0.1, test host names resolved by a stub.

The sender's transport here is httpx's own, wrapped so that it refuses (and records) any
connection to an address other than 127.0.0.1: even a broken sender could not reach anything
else from these tests, and the tests see every connection it made.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
import trustme
from alembic import command
from alembic.config import Config

from service import migrations
from service.store import Store
from service.webhook_targets import Policy, resolve_and_check
from service.webhooks import SIGNATURE_HEADER, DeliveryOptions, Sender, verify
from tests.service.conftest import wait_for_condition

LOOPBACK = Policy.from_entries(["127.0.0.1"], allow_http=True)
SECRET = "a-webhook-secret-0123456789"


class LoopbackOnly(httpx.BaseTransport):
    """httpx's transport that connects only to 127.0.0.1 and records where it was asked to."""

    def __init__(self, **options: Any) -> None:
        self.inner = httpx.HTTPTransport(retries=0, **options)
        self.asked: list[tuple[str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append((request.url.host, request.url.port or 0))
        if request.url.host != "127.0.0.1":
            raise httpx.ConnectError(f"test transport: {request.url.host} is not loopback")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class Receiver:
    """An HTTP(S) server on 127.0.0.1 that records every POST and answers `status`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.status = 204
        self.received: list[tuple[dict[str, str], bytes, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body, time.monotonic()))
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.http.socket = tls.wrap_socket(self.http.socket, server_side=True)
        self.port = int(self.http.server_address[1])
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


class Tarpit:
    """Accepts connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def open_connections(self) -> int:
        """Connections the sender still holds open (a closed one reads as EOF)."""
        still = 0
        for conn in self.held:
            conn.setblocking(False)
            try:
                still += conn.recv(65536, socket.MSG_PEEK) != b""
            except BlockingIOError:
                still += 1
            except OSError:
                pass
        return still

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on a SQLite file, and on a database of the session's PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rldojo.db'}"
    else:
        url = str(
            request.getfixturevalue("postgres").create_database(f"hooks_{uuid.uuid4().hex[:8]}")
        )
    opened = Store(url)
    yield opened
    opened.close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture()
def start_sender(store: Store) -> Iterator[Callable[..., tuple[Sender, LoopbackOnly]]]:
    """Start a sender thread (stopped after the test) with a loopback-only transport."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(
        policy: Policy = LOOPBACK,
        resolve: dict[str, list[str]] | None = None,
        transport: LoopbackOnly | None = None,
        **options: Any,
    ) -> tuple[Sender, LoopbackOnly]:
        names = resolve or {}
        transport = transport or LoopbackOnly()
        sender = Sender(
            store,
            policy,
            DeliveryOptions(**options),
            resolver=lambda host, _port: names[host],
            transport=transport,
            poll_s=0.05,
        )
        stop = threading.Event()
        thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread))
        return sender, transport

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(timeout=30)


def _event(store: Store, owner: str) -> str:
    """A job status change of `owner`'s: one delivery to each of their webhooks."""
    return store.create_job(owner=owner, spec={"algorithm": "q_learning"}, status="QUEUED").id


def _settled(store: Store, webhook_id: str, count: int) -> list[Any] | None:
    log = store.list_deliveries(webhook_id=webhook_id)
    done = len(log) == count and all(d.state != "pending" for d in log)
    return log if done else None


def test_a_delivery_connects_to_the_checked_address_with_the_urls_host(
    store: Store, receiver: Receiver, start_sender: Any
) -> None:
    url = f"http://hook.test:{receiver.port}/in?x=1"
    hook = store.create_webhook(owner="bob", url=url, secret=SECRET)
    _, transport = start_sender(resolve={"hook.test": ["127.0.0.1"]})
    _event(store, "bob")
    (delivery,) = wait_for_condition(lambda: _settled(store, hook.id, 1), timeout=20)
    assert delivery.state == "delivered" and delivery.last_status == 204
    headers, body, _ = receiver.received[0]
    assert headers["Host"] == f"hook.test:{receiver.port}"
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert transport.asked == [("127.0.0.1", receiver.port)]  # the address, never the name


def test_tls_is_checked_against_the_urls_host_not_the_address(
    store: Store, start_sender: Any
) -> None:
    authority = trustme.CA()
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("hook.test").configure_cert(server_tls)
    names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,return-value]
    receiver = Receiver(tls=server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    try:
        good = store.create_webhook(
            owner="bob", url=f"https://hook.test:{receiver.port}/", secret=SECRET
        )
        other = store.create_webhook(
            owner="bob", url=f"https://other.test:{receiver.port}/", secret=SECRET
        )
        resolve = {"hook.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
        start_sender(LOOPBACK, resolve, LoopbackOnly(verify=client_tls), max_attempts=1)
        _event(store, "bob")
        (delivered,) = wait_for_condition(lambda: _settled(store, good.id, 1), timeout=20)
        (refused,) = wait_for_condition(lambda: _settled(store, other.id, 1), timeout=20)
    finally:
        receiver.close()
    assert delivered.state == "delivered" and "hook.test" in names
    assert refused.state == "failed" and "CERTIFICATE_VERIFY_FAILED" in refused.last_error
    assert len(receiver.received) == 1 and receiver.received[0][0]["Host"] == (
        f"hook.test:{receiver.port}"
    )


def test_a_host_that_later_resolves_to_a_private_address_is_refused_before_connecting(
    store: Store, receiver: Receiver, start_sender: Any
) -> None:
    names = {"rebind.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1"]}
    resolver = lambda host, _port: names[host]  # noqa: E731
    urls = [f"http://{name}:{receiver.port}/" for name in names]
    # allowed when registered...
    assert all(resolve_and_check(url, LOOPBACK, resolver).allowed for url in urls)
    hooks = [store.create_webhook(owner="bob", url=url, secret=SECRET) for url in urls]
    # ...then the names move: to a private address, and to loopback plus a private one
    names.update({"rebind.test": ["10.20.30.40"], "mixed.test": ["127.0.0.1", "10.20.30.40"]})
    _, transport = start_sender(resolve=names)
    _event(store, "bob")
    for hook, name in zip(hooks, names, strict=True):
        (delivery,) = wait_for_condition(lambda h=hook: _settled(store, h.id, 1), timeout=20)
        assert delivery.state == "failed" and delivery.attempts == 1  # final: not retried
        assert delivery.last_error == (
            f"refused: {name} resolves to 10.20.30.40, a private address"
        )
    assert transport.asked == [] and receiver.received == []  # no connection was made


def test_poison_deliveries_fail_at_once_with_their_reason_and_hold_up_no_one(
    store: Store, receiver: Receiver, start_sender: Any
) -> None:
    # URLs an older version accepted: a CRLF, user info, an odd spelling of loopback
    poison = {
        f"http://127.0.0.1:{receiver.port}/x\r\nInjected: 1": "control character",
        f"http://user:pass@127.0.0.1:{receiver.port}/": "user info",
        f"http://127.1:{receiver.port}/": "127.1 is an unusual spelling of 127.0.0.1",
    }
    bad = [store.create_webhook(owner="mallory", url=url, secret=SECRET) for url in poison]
    good = store.create_webhook(
        owner="bob", url=f"http://127.0.0.1:{receiver.port}/", secret=SECRET
    )
    for _ in range(3):
        _event(store, "mallory")
    _, transport = start_sender()
    started = time.monotonic()
    _event(store, "bob")
    (delivered,) = wait_for_condition(lambda: _settled(store, good.id, 1), timeout=10)
    assert delivered.state == "delivered" and receiver.received[0][2] - started < 2.0
    for hook, reason in zip(bad, poison.values(), strict=True):
        log = wait_for_condition(lambda h=hook: _settled(store, h.id, 3), timeout=10)
        assert all(d.state == "failed" and d.attempts == 1 for d in log)
        assert all(reason in (d.last_error or "") for d in log), log[0].last_error
    assert len(receiver.received) == 1 and len(transport.asked) == 1


def test_a_tarpit_receiver_does_not_delay_another_owners_delivery(
    store: Store, receiver: Receiver, start_sender: Any
) -> None:
    tarpit = Tarpit()
    try:
        store.create_webhook(owner="mallory", url=f"http://127.0.0.1:{tarpit.port}/", secret=SECRET)
        good = store.create_webhook(
            owner="bob", url=f"http://127.0.0.1:{receiver.port}/", secret=SECRET
        )
        for _ in range(10):
            _event(store, "mallory")
        start_sender(in_flight=2, workers=8, timeout_s=5.0)
        wait_for_condition(lambda: tarpit.open_connections() == 2, timeout=10, interval=0.05)
        started = time.monotonic()
        _event(store, "bob")
        (delivered,) = wait_for_condition(lambda: _settled(store, good.id, 1), timeout=10)
        took = receiver.received[0][2] - started
        held = tarpit.open_connections()
    finally:
        tarpit.close()
    assert delivered.state == "delivered" and took < 2.0, f"took {took:.2f} s"
    assert held <= 2  # the tarpit's webhook never has more than its two tries in flight


def test_a_webhook_is_disabled_after_n_failed_deliveries_and_enabled_again(
    store: Store, receiver: Receiver, start_sender: Any
) -> None:
    receiver.status = 500
    hook = store.create_webhook(
        owner="bob", url=f"http://127.0.0.1:{receiver.port}/", secret=SECRET
    )
    for _ in range(5):
        _event(store, "bob")
    start_sender(max_attempts=1, disable_after=3, in_flight=1)
    log = wait_for_condition(lambda: _settled(store, hook.id, 5), timeout=20)
    disabled = store.get_webhook(webhook_id=hook.id)
    assert disabled is not None and not disabled.enabled and disabled.consecutive_failures == 3
    assert (
        disabled.disabled_reason == "disabled after 3 failed deliveries in a row (last: HTTP 500)"
    )
    assert len(receiver.received) == 3  # the fourth and fifth were not sent...
    not_sent = [d for d in log if d.last_error.startswith("not sent: webhook disabled after 3")]
    assert len(not_sent) == 2 and all(d.state == "failed" for d in log)  # ...nor left pending
    _event(store, "bob")  # a disabled webhook gets no new events
    assert len(store.list_deliveries(webhook_id=hook.id)) == 5
    receiver.status = 204
    enabled = store.set_webhook_enabled(webhook_id=hook.id, enabled=True)
    assert enabled is not None and enabled.enabled and enabled.consecutive_failures == 0
    _event(store, "bob")
    log = wait_for_condition(lambda: _settled(store, hook.id, 6), timeout=20)
    assert log[0].state == "delivered" and len(receiver.received) == 4


def test_redirects_are_not_followed(store: Store, receiver: Receiver, start_sender: Any) -> None:
    receiver.status = 302
    hook = store.create_webhook(
        owner="bob", url=f"http://127.0.0.1:{receiver.port}/", secret=SECRET
    )
    _, transport = start_sender(max_attempts=1)
    _event(store, "bob")
    (delivery,) = wait_for_condition(lambda: _settled(store, hook.id, 1), timeout=20)
    assert delivery.state == "failed" and delivery.last_status == 302
    assert delivery.last_error == "HTTP 302 (redirects are not followed)"
    assert transport.asked == [("127.0.0.1", receiver.port)]


def test_a_database_from_before_webhook_health_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sqlalchemy.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO webhooks (id, owner, url, secret, created_at) "
                "VALUES ('old1', 'bob', 'https://hooks.example/', 's', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    upgraded = Store(url)
    try:
        hook = upgraded.get_webhook(webhook_id="old1")
        assert hook is not None and hook.enabled and hook.consecutive_failures == 0
    finally:
        upgraded.close()
