"""The real service for API tests: `rldojo serve` (uvicorn) on a free port over a real Ray head.

One server and one embedded Ray head are shared by the whole session; `server.restart()` stops
and starts the API process on the same data directory (the head and its jobs keep running).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service import cluster
from service.client import Client
from service.settings import Settings
from service.status import ACTIVE
from tests.backends import PostgresServer, S3Server

ALICE, BOB = "alice-token-0123456789", "bob-token-9876543210"
# carol may run one job holding 1 CPU at a time, and have one high-priority job (quota); bob
# may have two high-priority jobs; alice none (the default once there are tokens).
CAROL = "carol-token-5555555555"
RLDOJO = str(Path(sys.executable).with_name("rldojo"))


def wait_for_condition(
    condition: Callable[[], Any], timeout: float = 120.0, interval: float = 0.5
) -> Any:
    """Poll until `condition()` is truthy; return its value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        time.sleep(interval)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`rldojo serve` in a subprocess with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            RLDOJO_DATA_DIR=str(data_dir),
            RLDOJO_API_TOKENS=f'{{"{ALICE}": "alice", "{BOB}": "bob", "{CAROL}": "carol"}}',
            RLDOJO_QUOTAS='{"carol": {"running_jobs": 1, "cpus": 1, "high_jobs": 1}, '
            '"bob": {"high_jobs": 2}}',
            RLDOJO_RAY_NUM_CPUS="2",
            RLDOJO_MAX_EVAL_EPISODES="50",
            RLDOJO_MAX_BODY_BYTES="65536",
            RLDOJO_POLL_SECONDS="0.5",
            # The tests' webhook receivers listen on 127.0.0.1 over http: the operator allows it.
            RLDOJO_WEBHOOK_ALLOW="127.0.0.1",
            RLDOJO_WEBHOOK_ALLOW_HTTP="true",
            # The jobs that ask for MLflow tracking log to a real MLflow store beside the data.
            RLDOJO_MLFLOW_TRACKING_URI=f"sqlite:///{data_dir / 'mlflow.db'}",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [RLDOJO, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_condition(self._ready, timeout=180)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
        try:
            health = httpx.get(f"{self.url}/healthz", timeout=2).json()
        except httpx.HTTPError:
            return False
        return bool(health.get("ray"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, token: str | None = ALICE) -> Client:
        return Client(self.url, token, poll=0.2)  # reads are cheap: a test waits less


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("rldojo-service")
    running = Server(data_dir)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        cluster.stop_embedded_head(Settings(data_dir=data_dir))


@pytest.fixture(autouse=True)
def _no_job_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a lifecycle test, stop whatever jobs it left active.

    A long job (100,000 iterations) is stopped by its test's last line; a test that fails before
    it would leave the job holding the cluster, and every test after it would sit QUEUED.
    """
    yield
    if request.node.get_closest_marker("lifecycle") is None or "server" not in request.fixturenames:
        return
    server: Server = request.getfixturevalue("server")
    if server.process is None or server.process.poll() is not None:
        return  # the test left the API down: nothing can be stopped through it
    for token in (ALICE, BOB, CAROL):
        with server.client(token) as client:
            for job in client.jobs():
                if job.status in ACTIVE:
                    client.stop(job.id, wait_s=120)


@pytest.fixture()
def alice(server: Server) -> Iterator[Client]:
    with server.client(ALICE) as client:
        yield client


@pytest.fixture()
def bob(server: Server) -> Iterator[Client]:
    with server.client(BOB) as client:
        yield client


@pytest.fixture()
def carol(server: Server) -> Iterator[Client]:
    with server.client(CAROL) as client:
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (its own data dir, port and socket)."""
    with PostgresServer() as running:
        yield running


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server (moto) for the session; `s3.env` holds endpoint and keys."""
    with S3Server() as running:
        yield running
