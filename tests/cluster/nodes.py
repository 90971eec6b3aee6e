"""A real multi-node Ray cluster on one machine: `ray start --head` plus `ray start --address`.

Each node is its own `ray start --block` process in its own session (process group) with its own
temp dir and explicit free ports, so tests can kill exactly one node (SIGKILL to the node's
processes, as a machine failure would) and never touch another Ray on the machine. Token
authentication is on, with one token shared by the nodes, the API and the test.

Example:
    >>> cluster = LocalCluster(Path("/tmp/rldojo-nodes"))  # doctest: +SKIP
    >>> cluster.start_head(); cluster.add_worker()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.backends import free_port

RAY = str(Path(sys.executable).with_name("ray"))
HEAD_RESOURCE = "rldojo_head"  # custom resources name the nodes in Ray's state API
WORKER_RESOURCE = "rldojo_worker"
HEAD_CPUS = 4  # room for the whole job when a worker node is lost
WORKER_CPUS = 2


def ray_state(
    dashboard: str, headers: dict[str, str], kind: str, **filters: str
) -> list[dict[str, Any]]:
    """Ray's state API, `/api/v0/<kind>` (nodes, actors, ...) with `key=value` filters, detailed."""
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("limit", 10000),
        ("detail", "true"),
    ]
    for key, value in filters.items():
        params += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", value)]
    response = httpx.get(f"{dashboard}/api/v0/{kind}", params=params, headers=headers, timeout=30)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]["result"]
    return result


@dataclass
class Node:
    """One `ray start --block` process and what it was started with."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    resource: str

    def processes(self) -> list[psutil.Process]:
        """The `ray start` process and everything it started (raylet, workers, agents)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the node's every process at once: the node dies as if its machine failed."""
        victims = self.processes()
        for process in victims:
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=30)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: `ray start --block` stops this node's Ray processes; then kill what is left."""
        if self.process.poll() is None:
            descendants = self.processes()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            for process in descendants:
                try:
                    process.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
            self.process.wait(timeout=30)


@dataclass
class LocalCluster:
    """A head and any number of worker nodes on this machine, all with a small CPU count."""

    root: Path
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    head: Node | None = None
    workers: list[Node] = field(default_factory=list)
    starts: int = 0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.token_path = self.root / "auth_token"
        self.token_path.write_text(self.token)
        self.token_path.chmod(0o600)

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def env(self) -> dict[str, str]:
        """The environment of every node (and of what runs on them)."""
        env = dict(os.environ)
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_path))
        # The head declares a killed node dead after 5 missed 1-second health checks (not 15 s).
        env["RAY_health_check_period_ms"] = "1000"
        for key in ("RAY_AUTH_TOKEN", "RAY_ADDRESS"):
            env.pop(key, None)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _start(self, name: str, resource: str, cpus: int, args: list[str]) -> Node:
        self.starts += 1
        # Ray's unix socket paths must stay short: a short temp dir per node start.
        temp_dir = self.root / f"{name[0]}{self.starts}"
        ports = [free_port() for _ in range(7)]
        command = [
            RAY, "start", "--block", *args,
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            f"--resources={json.dumps({resource: 1})}",
            f"--temp-dir={temp_dir}",
            "--object-store-memory=200000000",
            "--disable-usage-stats",
            f"--node-manager-port={ports[0]}",
            f"--object-manager-port={ports[1]}",
            f"--metrics-export-port={ports[2]}",
            f"--dashboard-agent-listen-port={ports[3]}",
            f"--dashboard-agent-grpc-port={ports[4]}",
            f"--runtime-env-agent-port={ports[5]}",
        ]  # fmt: skip
        if name == "head":
            command.append(f"--ray-client-server-port={ports[6]}")
        log = self.root / f"{name}-{self.starts}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                start_new_session=True,
            )
        return Node(name=name, process=process, log=log, resource=resource)

    def start_head(self, timeout: float = 120.0) -> Node:
        """Start (or, after `kill_all`, restart on the same ports) the head node."""
        self.head = self._start(
            "head",
            HEAD_RESOURCE,
            HEAD_CPUS,
            [
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={self.gcs_port}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
            ],
        )
        self._wait(lambda: self._jobs_ready() and self.alive_nodes(HEAD_RESOURCE), timeout)
        return self.head

    def add_worker(self, timeout: float = 120.0) -> Node:
        """Start a worker node that joins the head (with the shared token)."""
        before = len(self.alive_nodes(WORKER_RESOURCE))
        worker = self._start(
            "worker",
            WORKER_RESOURCE,
            WORKER_CPUS,
            ["--node-ip-address=127.0.0.1", f"--address=127.0.0.1:{self.gcs_port}"],
        )
        self.workers.append(worker)
        self._wait(lambda: len(self.alive_nodes(WORKER_RESOURCE)) > before, timeout)
        return worker

    def kill_worker(self, worker: Node, timeout: float = 120.0) -> None:
        """Kill a worker node; returns once the head has declared it dead."""
        worker_ids = {n["node_id"] for n in self.alive_nodes(WORKER_RESOURCE)}
        worker.kill()
        self.workers.remove(worker)
        self._wait(lambda: len(self.alive_nodes(WORKER_RESOURCE)) < len(worker_ids), timeout)

    def kill_all(self) -> None:
        """Kill every node at once: the whole cluster is gone (its jobs with it)."""
        for node in [*self.workers, *([self.head] if self.head else [])]:
            node.kill()
        self.workers.clear()
        self.head = None

    def stop(self) -> None:
        for node in [*self.workers, *([self.head] if self.head else [])]:
            node.stop()
        self.workers.clear()
        self.head = None

    # ---- Ray's state API over HTTP, with the token ------------------------------------------

    def state(self, kind: str, **filters: str) -> list[dict[str, Any]]:
        """`/api/v0/<kind>` (nodes, actors, ...) with `key=value` filters, detailed."""
        return ray_state(self.dashboard, self.headers, kind, **filters)

    def alive_nodes(self, resource: str | None = None) -> list[dict[str, Any]]:
        try:
            nodes = self.state("nodes", state="ALIVE")
        except (httpx.HTTPError, KeyError, ValueError):
            return []
        return [n for n in nodes if resource is None or resource in n.get("resources_total", {})]

    def _jobs_ready(self) -> bool:
        try:
            response = httpx.get(f"{self.dashboard}/api/jobs/", headers=self.headers, timeout=5)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _wait(self, condition: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for node in [self.head, *self.workers]:
                if node is not None and node.process.poll() is not None:
                    raise RuntimeError(f"{node.name} exited: {node.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster did not get there in {timeout}s")
            time.sleep(0.5)
