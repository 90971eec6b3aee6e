"""The Dockerfile's shape: layers in the right order, a non-root user, a health check, a torch
switch that refuses unknown values, a base image and a wheelhouse that a build may replace. The
install itself runs in test_image_install.py (from the indexes) and in tests/compose (a real
`docker build` on the local base, from the wheelhouse)."""

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
    assert [s.name for s in STAGES] == ["wheelhouse", "base", "deps", "app"]
    assert BY_NAME["deps"].base == "base" and BY_NAME["app"].base == "deps"
    assert BY_NAME["wheelhouse"].base == "scratch"  # mounted by the pip steps, never a layer
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
    assert BY_NAME["base"].base == "${BASE_IMAGE}"
    # Users get the official image unless they pass another base (`make base-images`).
    assert _global_args()["BASE_IMAGE"] == f"python:{version}-slim-bookworm"


def _global_args() -> dict[str, str]:
    """The ARGs before the first FROM with their defaults, expanded in order."""
    values: dict[str, str] = {}
    for instruction in PREAMBLE:
        if instruction.keyword == "ARG":
            values.update(dockerfile.assignments(instruction, values))
    return values


def _pip_steps() -> list[dockerfile.Instruction]:
    runs = BY_NAME["deps"].of("RUN") + BY_NAME["app"].of("RUN")
    return [run for run in runs if "pip install" in run.arguments]


def test_a_wheelhouse_replaces_the_indexes_only_when_given() -> None:
    assert _global_args()["WHEELHOUSE"] == ""  # by default: PyPI and PyTorch's CPU index
    [copy] = BY_NAME["wheelhouse"].of("COPY")
    source = copy.arguments.split()[0]
    default = dockerfile.expand(source, {})  # what the stage copies without a wheelhouse
    assert (ROOT / default).is_file() and source != default
    for run in _pip_steps():
        assert "--mount=type=bind,from=wheelhouse,target=/wheelhouse" in run.arguments
        command = dockerfile.shell_command(run)
        offline = "${WHEELHOUSE:+--no-index --find-links /wheelhouse}"
        for call in command.split("pip install --quiet ")[1:]:
            assert call.startswith((offline, "$offline")), f"line {run.line}: {call[:60]}"
        assert command.count("pip install --quiet ") == command.count("pip install")
        if "$offline" in command:
            assert f'offline="{offline}"' in command


def test_the_wheelhouse_reaches_the_build_context_but_not_git(tmp_path: Path) -> None:
    wheel = "deploy/wheelhouse/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    patterns = dockerfile.ignore_patterns(ROOT)
    assert not dockerfile.ignored(wheel, patterns)
    assert dockerfile.ignored(".env", patterns)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", wheel, "deploy/wheelhouse/README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == [wheel]


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
