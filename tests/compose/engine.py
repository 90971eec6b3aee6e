"""A Docker engine for the compose tests, and the images they run, built on this machine.

`DockerEngine.ensure()` uses the daemon that answers, or starts `dockerd` (root only) and stops
that one, and only that one, at the end. The images are built from local sources only, as a host
that reaches Debian's mirror and a package index but no image registry must (CI here):
deploy/local-base/build.sh makes the Debian, Python and PostgreSQL base images, and the
Dockerfile builds the rldojo image on the local Python base from deploy/wheelhouse
(`make wheelhouse`), with no change to what a default build gives users.

The Docker CLI is Debian's (/usr/bin/docker from docker.io) unless `DOCKER` names another: the
Dockerfile needs BuildKit, which that CLI drives itself, while a newer CLI needs the buildx
plugin for it. Override with `DOCKER=/path/to/docker`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_BASE = "rldojo-local/python:3.11-bookworm"
LOCAL_POSTGRES = "rldojo-local/postgres:15-bookworm"
WHEELHOUSE = "deploy/wheelhouse"  # relative to the build context, as the Dockerfile wants it


def docker_cli() -> str:
    """The Docker CLI to use: `DOCKER`, else Debian's, else whatever `docker` is on PATH."""
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise RuntimeError("no docker CLI: run `make compose-deps` (Debian's docker.io)")
    return found


def run(command: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout, or an error with the tail of its output."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} ... exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return str(done.stdout)


class DockerEngine:
    """The daemon the tests use; started here only when none answers."""

    def __init__(self, log_dir: Path) -> None:
        self.docker = docker_cli()
        self.log = log_dir / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def answers(self) -> bool:
        done = subprocess.run(
            [self.docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=30,
        )
        return done.returncode == 0

    def ensure(self, timeout: float = 60.0) -> None:
        """Use the running daemon, or start `dockerd` and wait until it answers."""
        if self.answers():
            return
        dockerd = shutil.which("dockerd")
        if dockerd is None or os.geteuid() != 0:
            raise RuntimeError("no Docker daemon answers and this user cannot start dockerd")
        # No iptables and no default bridge: this machine has neither. Compose's own network (a
        # user-defined bridge) still connects the containers and resolves service names, and the
        # userland proxy publishes ports on 127.0.0.1.
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [dockerd, "--iptables=false", "--bridge=none"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer in {timeout}s")
            time.sleep(0.5)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        """Stop the daemon if this object started it (its containerd goes with it)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def build_base_images(docker: str) -> None:
    """deploy/local-base/build.sh: Debian by debootstrap, then Python 3.11 and PostgreSQL 15."""
    if not (ROOT / WHEELHOUSE / "requirements.txt").is_file():
        raise RuntimeError(f"{WHEELHOUSE} is empty: run `make wheelhouse` first")
    run([str(ROOT / "deploy" / "local-base" / "build.sh")], env={**os.environ, "DOCKER": docker})


def build_image(docker: str, tag: str) -> None:
    """The repository's Dockerfile on the local Python base, from the wheelhouse only."""
    run(
        [
            docker, "build", "--network", "host", "--quiet",
            "--build-arg", f"BASE_IMAGE={LOCAL_BASE}",
            "--build-arg", f"WHEELHOUSE={WHEELHOUSE}",
            "--tag", tag,
            str(ROOT),
        ],
        timeout=1800,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
