"""The Dockerfile's shape: layers in the right order, a non-root user, a health check, a torch
switch that refuses unknown values. The install itself runs in test_image_install.py."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from tests.deploy import dockerfile

ROOT = Path(__file__).resolve().parents[2]
PREAMBLE, STAGES = dockerfile.parse(ROOT / "Dockerfile")
BY_NAME = {stage.name: stage for stage in STAGES}


def test_stages_build_on_each_other_dependencies_before_code() -> None:
    assert [s.name for s in STAGES] == ["base", "deps", "app"]
    assert BY_NAME["deps"].base == "base" and BY_NAME["app"].base == "deps"
    # The dependency layer sees only pyproject.toml, so code edits do not reinstall torch and Ray.
    copied = [i.arguments.split()[0] for i in BY_NAME["deps"].of("COPY")]
    assert copied == ["pyproject.toml"]
    assert BY_NAME["deps"].of("RUN"), "the dependency layer installs nothing"
    code = {i.arguments.split()[0] for i in BY_NAME["app"].of("COPY")}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    wanted = {pattern.rstrip("*") for pattern in packages["packages"]["find"]["include"]}
    assert wanted <= code, f"the code layer misses {wanted - code}"


def test_python_matches_the_project() -> None:
    [version] = [
        dockerfile.assignments(i, {})["PYTHON_VERSION"]
        for i in PREAMBLE
        if i.keyword == "ARG" and i.arguments.startswith("PYTHON_VERSION")
    ]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={version}" in requires
    assert BY_NAME["base"].base.startswith("python:${PYTHON_VERSION}")


def test_runs_as_a_non_root_user_with_a_health_check() -> None:
    app = BY_NAME["app"]
    [user] = app.of("USER")
    assert user.arguments not in ("root", "0")
    [healthcheck] = app.of("HEALTHCHECK")
    assert "/healthz" in healthcheck.arguments
    assert "wget" in BY_NAME["base"].of("RUN")[0].arguments  # the probes' tool is installed
    ports = {p for i in app.of("EXPOSE") for p in i.arguments.split()}
    assert {"8000", "6379", "8265"} <= ports
    [cmd] = app.of("CMD")
    assert '"rldojo", "serve"' in cmd.arguments


def test_torch_variant_rejects_unknown_values(tmp_path: Path) -> None:
    [command] = [
        dockerfile.shell_command(i) for i in BY_NAME["deps"].of("RUN") if "$TORCH" in i.arguments
    ]
    args = {}
    for instruction in BY_NAME["deps"].of("ARG"):
        args.update(dockerfile.assignments(instruction, {}))
    assert args["TORCH"] == "cpu"
    assert re.search(r"--extra-index-url\s+\"?\$TORCH_CPU_INDEX", command)
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=tmp_path,
        env={**args, "TORCH": "rocm", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "TORCH must be cpu or cuda, not 'rocm'" in done.stderr


def test_dockerignore_keeps_secrets_and_bulk_out_of_the_context() -> None:
    patterns = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git"} <= patterns
