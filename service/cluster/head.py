"""The Ray cluster the service submits to: an existing one, or an embedded head it owns.

With no `RLDOJO_RAY_ADDRESS`, the service starts `ray start --head --block` as a detached
process (its own session, so it outlives the API) with token auth on and the token in
`<data_dir>/ray/auth_token`, and records its dashboard address and pid in
`<data_dir>/ray/head.json`. A restarted API finds that file, checks the dashboard answers, and
re-joins the same head, so jobs keep running across API restarts. `stop_embedded_head` ends it
(SIGTERM to the `ray start --block` process, which stops its own Ray processes only).

The API process never joins the cluster as a driver: it talks to the dashboard over HTTP
(Ray Jobs SDK and the state API), so a crash in Ray cannot take the API down and vice versa.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.cluster.connection import RayConnection, cluster_summary, dashboard_alive
from service.cpu_share import run_behind
from service.settings import Settings

logger = logging.getLogger(__name__)


def connect(settings: Settings) -> RayConnection:
    """The cluster to use: `settings.ray_address`, or the embedded head (started if needed)."""
    if settings.ray_address:
        return RayConnection(settings.ray_address.rstrip("/"), _token_for_remote(settings))
    return ensure_embedded_head(settings)


def _token_for_remote(settings: Settings) -> str | None:
    if settings.ray_auth_token:
        return settings.ray_auth_token
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    return path.read_text().strip() if path.is_file() else None


def _head_dir(settings: Settings) -> Path:
    return settings.data_dir / "ray"


def _head_file(settings: Settings) -> Path:
    return _head_dir(settings) / "head.json"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def read_embedded_head(settings: Settings) -> dict[str, Any] | None:
    """The recorded embedded head ({"address", "pid", "token_path"}), or None."""
    path = _head_file(settings)
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data


def ensure_embedded_head(settings: Settings, timeout: float = 120.0) -> RayConnection:
    """Re-join the data directory's Ray head if it is alive, otherwise start a new one."""
    head_dir = _head_dir(settings)
    head_dir.mkdir(parents=True, exist_ok=True)
    token_path = head_dir / "auth_token"
    if not token_path.is_file():
        token_path.write_text(secrets.token_hex(32))
        token_path.chmod(0o600)
    token = token_path.read_text().strip()
    recorded = read_embedded_head(settings)
    if recorded is not None:
        connection = RayConnection(recorded["address"], token)
        if dashboard_alive(connection):
            logger.info("re-joined the embedded Ray head at %s", connection.address)
            return connection
    return _start_head(settings, token_path, token, timeout)


def _start_head(settings: Settings, token_path: Path, token: str, timeout: float) -> RayConnection:
    ports = _free_ports(8)
    gcs_port, dashboard_port = ports[0], ports[1]
    # Ray's unix sockets must stay under ~107 characters, so the temp dir is short.
    digest = hashlib.sha1(str(settings.data_dir).encode()).hexdigest()[:8]
    temp_dir = Path(tempfile.gettempdir()) / f"rldojo-ray-{digest}"
    ray_bin = Path(sys.executable).with_name("ray")
    command = [
        str(ray_bin) if ray_bin.exists() else "ray",
        "start",
        "--head",
        "--block",
        f"--port={gcs_port}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        "--include-dashboard=true",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        # Every port explicit and free: other Ray clusters on the machine hold the defaults.
        f"--dashboard-agent-listen-port={ports[2]}",
        f"--dashboard-agent-grpc-port={ports[3]}",
        f"--metrics-export-port={ports[4]}",
        f"--runtime-env-agent-port={ports[5]}",
        f"--ray-client-server-port={ports[6]}",
        f"--node-manager-port={ports[7]}",
    ]
    if settings.ray_num_cpus is not None:
        command.append(f"--num-cpus={settings.ray_num_cpus}")
    env = dict(os.environ)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path))
    # A forced stop (SIGTERM) gives Tune this long to write its last snapshot before SIGKILL.
    env.setdefault("RAY_JOB_STOP_WAIT_TIME_S", "30")
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_ADDRESS", None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    log_path = _head_dir(settings) / "head.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: run_behind(settings.ray_nice),
        )
    connection = RayConnection(f"http://127.0.0.1:{dashboard_port}", token)
    deadline = time.monotonic() + timeout
    while not _jobs_agent_ready(connection):
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            process.terminate()
            raise RuntimeError(f"the embedded Ray head did not come up in {timeout}s")
        time.sleep(0.5)
    record = {"address": connection.address, "pid": process.pid, "token_path": str(token_path)}
    _head_file(settings).write_text(json.dumps(record))
    logger.info("started an embedded Ray head at %s (pid %d)", connection.address, process.pid)
    return connection


def _jobs_agent_ready(connection: RayConnection) -> bool:
    """The dashboard answers and the head node's job agent is registered."""
    try:
        response = httpx.get(
            f"{connection.address}/api/jobs/", headers=connection.headers, timeout=5.0
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and _agent_registered(connection)


def _agent_registered(connection: RayConnection) -> bool:
    try:
        summary = cluster_summary(connection)
    except httpx.HTTPError:
        return False
    return any(node["state"] == "ALIVE" for node in summary["nodes"])


def stop_embedded_head(settings: Settings, timeout: float = 60.0) -> bool:
    """Stop the data directory's embedded head (and the jobs on it); False if none was running."""
    recorded = read_embedded_head(settings)
    if recorded is None:
        return False
    pid = int(recorded["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _head_file(settings).unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                break
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.3)
    _head_file(settings).unlink(missing_ok=True)
    return True
