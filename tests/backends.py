"""Real servers the tests start and stop: PostgreSQL (Debian's package) and an S3 server (moto).

Both run as subprocesses on free ports in their own temporary directories and are stopped by pid,
so tests never touch another PostgreSQL or S3 endpoint on the machine.

Example:
    >>> with PostgresServer() as postgres:  # doctest: +SKIP
    ...     url = postgres.create_database("jobs")  # postgresql+psycopg://...
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PG_BIN = Path(os.environ.get("RLDOJO_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "rldojo"
# The server's own time zone is deliberately not UTC: the store must hand back UTC regardless.
PG_TIMEZONE = "Asia/Kolkata"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poll(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {timeout}s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PostgresServer:
    """A throw-away PostgreSQL cluster: initdb in a temp dir, a free port, its unix socket there.

    PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user
    (`runuser`) in a directory it owns. Durability is off (fsync, synchronous_commit): test data.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rldojo-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def start(self) -> PostgresServer:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL is not installed in {PG_BIN} (make system-deps)")
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        subprocess.run(
            self._command(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),  # fmt: skip
            check=True,
            capture_output=True,
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self._command(
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.dir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"timezone={PG_TIMEZONE}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ),  # fmt: skip
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _poll(self._ready, 30, f"PostgreSQL (log: {self.log})")
        return self

    def _ready(self) -> bool:
        import psycopg

        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def dsn(self, database: str) -> str:
        """A libpq connection string over the unix socket."""
        return f"host={self.dir} port={self.port} user={PG_USER} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` over the unix socket."""
        return f"postgresql+psycopg://{PG_USER}@/{database}?host={self.dir}&port={self.port}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        # SIGINT to the postmaster is PostgreSQL's "fast" shutdown (runuser does not pass it on).
        pid_file = self.data / "postmaster.pid"
        if self.process is not None and self.process.poll() is None and pid_file.is_file():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
                self.process.wait(timeout=20)
            except (ProcessLookupError, ValueError, subprocess.TimeoutExpired):
                pass
        _stop(self.process)
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class S3Server:
    """moto's S3-compatible server (`moto_server`) on a free port, with test credentials.

    `env` holds what a client needs to use it: the endpoint (`AWS_ENDPOINT_URL`, read by pyarrow
    and therefore by Ray Tune and the service's storage), region and credentials.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="rldojo-s3-"))
        self.log = self.dir / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "rldojo-test",
            "AWS_SECRET_ACCESS_KEY": "rldojo-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> S3Server:
        moto = Path(sys.executable).with_name("moto_server")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _poll(self._ready, 30, f"moto_server (log: {self.log})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"moto_server exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.endpoint, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self) -> Any:
        """A boto3 S3 client for this server (to look at the bucket independently of pyarrow)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self, name: str) -> str:
        """Create a bucket and return its `s3://` URI."""
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix`."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
