"""The image's install steps, run for real without Docker: the Dockerfile cannot rot silently.

The test reads the Dockerfile, takes the RUN and COPY instructions of its `deps` (dependency
layer) and `app` (code layer) stages, and runs them as written in a fresh venv: the same shell
commands with the stages' ARG defaults and ENV, the venv in a temporary directory instead of
/opt/venv, and COPY honouring .dockerignore. The `base` stage's apt-get/useradd are not run (they
need root and Debian's package mirrors). Then the venv must import the packages, pass `pip check`
and list the algorithms.

On this machine PyTorch's CPU index is unreachable; pip skips it and finds the same
torch==2.13.0+cpu wheel through the machine's pip config (find-links), as the image does from
the index. It takes minutes (191 s measured on the shared 2-core machine; torch alone unpacks to
0.9 GB), hence the `image` marker: `make test-image` runs it (and CI, after `make test`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.deploy import dockerfile

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.image


def _copy(arguments: str, workdir: Path, patterns: list[str]) -> None:
    """COPY src... dest, relative to the build context (the repository) and the workdir."""
    *sources, destination = [a for a in arguments.split() if not a.startswith("--")]
    target = workdir / destination
    for source in sources:
        path = ROOT / source
        if path.is_dir():

            def ignore(directory: str, names: list[str]) -> set[str]:
                base = Path(directory).relative_to(ROOT)
                return {n for n in names if dockerfile.ignored((base / n).as_posix(), patterns)}

            shutil.copytree(path, target, ignore=ignore, dirs_exist_ok=True)
        else:
            dest = target / path.name if destination.endswith("/") else target
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


def _dependencies() -> list[str]:
    deps: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    return deps


def _stage_chain(stages: list[dockerfile.Stage], name: str) -> list[dockerfile.Stage]:
    by_name = {stage.name: stage for stage in stages}
    chain = [by_name[name]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def build(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Run the Dockerfile's stages here with their default build args; the venv and final env."""
    _, stages = dockerfile.parse(ROOT / "Dockerfile")
    chain = _stage_chain(stages, stages[-1].name)
    assert [s.name for s in chain] == ["base", "deps", "app"], "the stage layout changed"
    venv = tmp_path / "venv"
    fixed = {"VIRTUAL_ENV": str(venv)}  # the image's /opt/venv, moved here
    env = {
        "PATH": f"{sys.base_prefix}/bin:/usr/bin:/bin",  # a Python 3.11 like the base image's
        "HOME": os.environ.get("HOME", str(tmp_path)),  # pip's cache, as warm as this machine's
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},  # this machine's pip
        **fixed,
    }
    patterns = dockerfile.ignore_patterns(ROOT)
    workdir = tmp_path
    timings: list[str] = []
    for stage in chain:
        for instruction in stage.instructions:
            if instruction.keyword in ("ENV", "ARG"):
                values = dockerfile.assignments(instruction, env)
                env.update({k: v for k, v in values.items() if k not in fixed})
            elif instruction.keyword == "WORKDIR":
                workdir = tmp_path / "root" / instruction.arguments.lstrip("/")
                workdir.mkdir(parents=True, exist_ok=True)
            elif stage.name == "base":
                continue  # system packages and the user: not ours to install here
            elif instruction.keyword == "COPY":
                _copy(instruction.arguments, workdir, patterns)
            elif instruction.keyword == "RUN":
                command = dockerfile.shell_command(instruction)
                started = time.monotonic()
                done = subprocess.run(
                    ["/bin/sh", "-c", command],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=1200,
                )
                timings.append(f"line {instruction.line} {time.monotonic() - started:.0f}s")
                assert done.returncode == 0, (
                    f"Dockerfile line {instruction.line} failed ({done.returncode}):\n"
                    f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
                )
    print("Dockerfile RUN timings:", ", ".join(timings))
    return venv, env


def test_dockerfile_install_commands_build_a_working_venv(tmp_path: Path) -> None:
    venv, env = build(tmp_path)
    python = venv / "bin" / "python"
    pin = next(d for d in _dependencies() if d.startswith("torch"))
    probe = (
        "import torch, ray, service, algorithms, envs; "
        "print(torch.__version__, torch.version.cuda, ray.__version__, service.__file__)"
    )
    # From tmp_path: `python -c` puts the working directory first on sys.path.
    done = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    torch_version, cuda, _, service_file = done.stdout.split()
    assert f"torch=={torch_version.split('+')[0]}" == pin.replace(" ", "")
    assert cuda == "None", f"TORCH=cpu installed a CUDA build of torch ({cuda})"
    assert Path(service_file).is_relative_to(venv), "the code must be installed, not the checkout"
    if (ROOT / "service" / "static").is_dir():
        assert (Path(service_file).parent / "static").is_dir(), (
            "package data missing from the wheel"
        )

    check = subprocess.run(
        [python, "-m", "pip", "check"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert check.returncode == 0, check.stdout + check.stderr

    listed = subprocess.run(
        [venv / "bin" / "rldojo", "algorithms"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "q_learning" in listed.stdout and "a3c" in listed.stdout
