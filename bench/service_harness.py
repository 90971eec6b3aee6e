"""Start and stop a real `rldojo serve` (uvicorn) over its embedded Ray head, for bench scripts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from service import cluster
from service.settings import Settings

TOKEN = "bench-token-0123456789"
RLDOJO = str(Path(sys.executable).with_name("rldojo"))


class BenchServer:
    """A throw-away service in a temp data dir: one token (`TOKEN`, owner `bench`) unless
    `tokens` ({token: owner}) says otherwise."""

    def __init__(
        self, data_dir: Path | None = None, tokens: dict[str, str] | None = None, **env: str
    ) -> None:
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="rldojo-bench-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        defaults = {
            "RLDOJO_DATA_DIR": str(self.data_dir),
            "RLDOJO_API_TOKENS": json.dumps(tokens or {TOKEN: "bench"}),
            "RLDOJO_RAY_NUM_CPUS": "2",
        }
        self.env.update({**defaults, **env})  # the caller's settings win
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchServer:
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [RLDOJO, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; see {self.data_dir / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).json().get("ray"):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not become healthy in 180 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        cluster.stop_embedded_head(Settings(data_dir=self.data_dir))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}
