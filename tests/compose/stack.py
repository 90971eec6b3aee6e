"""The repository's docker-compose.yml started for real, under a project name of its own.

The stack gets secrets made for the run (`.env`-style, in a mode-600 file outside the
repository), free ports on 127.0.0.1 for the API and the Ray dashboard (other clusters share
the machine), the local PostgreSQL image and the image built by tests/compose/engine.py.
Everything else is the compose file as users run it. The test talks to 127.0.0.1 only: the API
with bearer tokens, the dashboard (Ray's state API) with the cluster's token. The containers talk
among themselves on the compose network.

Example:
    >>> stack = ComposeStack(docker, Path("/tmp/run"), image_tag="compose-test")  # doctest: +SKIP
    >>> stack.up(workers=2); stack.wait_healthy()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from service.client import Client
from tests.backends import free_port
from tests.cluster.nodes import ray_state
from tests.compose.engine import LOCAL_POSTGRES, ROOT, run

OWNERS = ("alice", "bob")


def _token() -> str:
    return secrets.token_hex(24)


@dataclass
class ComposeStack:
    """One compose project: its env file, its containers, and clients for what it serves."""

    docker: str
    workdir: Path
    image_tag: str
    project: str = field(default_factory=lambda: f"rldojo-test-{secrets.token_hex(3)}")
    api_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    ray_token: str = field(default_factory=_token)
    tokens: dict[str, str] = field(default_factory=lambda: {owner: _token() for owner in OWNERS})

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env_file = self.workdir / "stack.env"
        values = {
            "RAY_AUTH_TOKEN": self.ray_token,
            "RLDOJO_API_TOKENS": json.dumps({token: o for o, token in self.tokens.items()}),
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "POSTGRES_IMAGE": LOCAL_POSTGRES,
            "RLDOJO_IMAGE_TAG": self.image_tag,
            "RLDOJO_API_PORT": str(self.api_port),
            "RAY_DASHBOARD_PORT": str(self.dashboard_port),
            "RAY_WORKER_CPUS": "2",
            # Below the defaults: other work shares this machine's memory.
            "RAY_WORKER_MEMORY": "4g",
            "RAY_HEAD_MEMORY": "3g",
        }
        self.env_file.touch(mode=0o600)  # secrets: readable by this user only, from the start
        # Quoted as .env.example does it: the token map has its own double quotes.
        self.env_file.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def client(self, owner: str | None = "alice", token: str | None = None) -> Client:
        """An SDK client at the published port with `owner`'s token (or `token` as given)."""
        return Client(self.api_url, token or (self.tokens[owner] if owner else None))

    # ---- docker-compose and docker ----------------------------------------------------------

    def compose(self, *args: str, timeout: float = 600) -> str:
        binary = shutil.which("docker-compose")
        if binary is None:
            raise RuntimeError("docker-compose is not installed: run `make compose-deps`")
        command = [binary, "--project-name", self.project, "--project-directory", str(ROOT)]
        command += ["--env-file", str(self.env_file), *args]
        # A clean environment: the caller's variables would override the env file.
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
        if "DOCKER_HOST" in os.environ:
            env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        return run(command, timeout=timeout, env=env)

    def up(self, workers: int) -> None:
        """`up -d --scale ray-worker=N`: starts what is missing, leaves running containers be."""
        self.compose("up", "-d", "--no-build", "--no-recreate", "--scale", f"ray-worker={workers}")

    def down(self, volumes: bool = False) -> None:
        self.compose("down", *(["--volumes"] if volumes else []), "--remove-orphans")

    def restart(self, service: str) -> None:
        self.compose("restart", service)

    def containers(self, service: str | None = None, stopped: bool = False) -> list[str]:
        """Ids of the project's (running, or all) containers, of one service or all."""
        command = [self.docker, "ps", "--quiet", "--no-trunc"] + (["--all"] if stopped else [])
        command += ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            command += ["--filter", f"label=com.docker.compose.service={service}"]
        return run(command).split()

    def inspect(self, container: str, template: str) -> str:
        return run([self.docker, "inspect", "--format", template, container]).strip()

    def ip(self, container: str) -> str:
        return self.inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")

    def service_of(self, container: str) -> str:
        """The compose service a container runs (ray-head, ray-worker, api, postgres)."""
        return self.inspect(container, '{{index .Config.Labels "com.docker.compose.service"}}')

    def kill(self, container: str) -> None:
        """SIGKILL the container's every process at once, as a machine failure would."""
        run([self.docker, "kill", container])

    def volumes(self) -> list[str]:
        command = [self.docker, "volume", "ls", "--quiet"]
        command += ["--filter", f"label=com.docker.compose.project={self.project}"]
        return sorted(run(command).split())

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "200")

    def wait_healthy(self, timeout: float = 300.0) -> None:
        """Until every running container passes its health check and the API reaches both
        Ray and the database."""
        deadline = time.monotonic() + timeout
        while not (self._containers_healthy() and self.api_healthy()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not healthy in {timeout}s:\n{self.logs()}")
            time.sleep(1.0)

    def _containers_healthy(self) -> bool:
        health = [self.inspect(c, "{{.State.Health.Status}}") for c in self.containers()]
        return bool(health) and all(status == "healthy" for status in health)

    def api_healthy(self) -> bool:
        try:
            health = httpx.get(f"{self.api_url}/healthz", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(health.get("ray") and health.get("database"))

    # ---- Ray's state API, at the published dashboard ----------------------------------------

    @property
    def ray_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ray_token}"}

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node the cluster has known (dead ones too), by node id."""
        found = ray_state(self.dashboard, self.ray_headers, "nodes")
        return {node["node_id"]: node for node in found}

    def container_at(self, ip: str) -> str | None:
        """The project's running container with this address on the compose network."""
        matches = [c for c in self.containers() if self.ip(c) == ip]
        return matches[0] if matches else None

    def job_actors(self, submission_id: str) -> list[dict[str, Any]]:
        """A Ray job's actors, each with `node_ip` and `is_head` of the node it is (was) on."""
        details = httpx.get(
            f"{self.dashboard}/api/jobs/{submission_id}", headers=self.ray_headers, timeout=30
        ).json()
        if not details.get("job_id"):
            return []  # the driver has not started yet
        nodes = self.nodes()
        actors = ray_state(self.dashboard, self.ray_headers, "actors", job_id=details["job_id"])
        for actor in actors:
            node = nodes.get(actor["node_id"], {})
            actor["node_ip"] = node.get("node_ip")
            actor["is_head"] = bool(node.get("is_head_node"))
        return actors
