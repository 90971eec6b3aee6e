"""The README's quick starts, run as a newcomer types them: each line in a fresh bash.

Every line of the bash blocks under "Quick start: the service" and "Quick start: train and
evaluate" runs literally, in a scratch folder that holds the checkout's `.venv` (so
`source .venv/bin/activate` is the README's own line), with two exceptions a reader makes too:
`<JOB_ID>` and `checkpoint_NNNNNN` become what the commands before them printed, and the
server's port is a free one (`PORT`, which `make run` reads, and the same port in RLDOJO_URL).
`make` lines run in the checkout. The service keeps its data in a scratch RLDOJO_DATA_DIR.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.lifecycle


def bash_lines(section: str) -> list[str]:
    """The command lines of the bash blocks in one `## section` of the README."""
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line)
    return lines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Shell:
    """Runs README lines one by one, each in a fresh `bash`, as a reader would in a terminal
    where they already typed the lines before (`source` and `export` lines carry over)."""

    def __init__(self, scratch: Path, env: dict[str, str]) -> None:
        self.scratch = scratch
        self.env = env
        self.prelude: list[str] = []
        (scratch / ".venv").symlink_to(ROOT / ".venv")

    def run(self, line: str, timeout: float = 600) -> str:
        here = ROOT if line.startswith("make ") else self.scratch
        script = "\n".join([*self.prelude, line])
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=here,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{line!r} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        if line.startswith(("source ", "export ")):
            self.prelude.append(line)
        return done.stdout


def _fresh_env(data_dir: Path, port: int) -> dict[str, str]:
    keep = ("HOME", "LANG", "TERM", "TMPDIR", "USER")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", RLDOJO_DATA_DIR=str(data_dir), PORT=str(port))
    env["COLUMNS"] = "200"
    return env


def test_the_service_quick_start(tmp_path: Path) -> None:
    port = _free_port()
    env = _fresh_env(tmp_path / "data", port)
    lines = bash_lines("Quick start: the service")
    assert lines[0].split("#")[0].strip() == "make run"
    server = subprocess.Popen(
        ["bash", "-c", lines[0]],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    shell = Shell(tmp_path, env)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("ray"):
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "make run did not answer in 300 s"
            time.sleep(1)
        printed: dict[str, str] = {}
        for line in lines[1:]:
            command = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            for placeholder, value in printed.items():
                command = command.replace(placeholder, value)
            out = shell.run(command)
            if " submit " in f" {command}":
                if "<JOB_ID>" in printed:  # the sharing section's second job
                    printed["<FIRST_JOB_ID>"] = printed["<JOB_ID>"]
                printed["<JOB_ID>"] = out.split()[0]
            if " pull " in f" {command}" and "ckpt/" in command:
                printed["ckpt/checkpoint_NNNNNN"] = out.strip()
                assert re.fullmatch(r"ckpt/checkpoint_\d{6}", out.strip()), out
            if " evaluate " in f" {command}":
                assert "return 100.00" in out, out
        assert "<FIRST_JOB_ID>" in printed and (tmp_path / "run.mp4").stat().st_size > 1000
        assert (tmp_path / "both.png").stat().st_size > 1000
        assert list((tmp_path / "best").glob("checkpoint_*/algorithm_state.pkl"))
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
        subprocess.run(
            [str(ROOT / ".venv/bin/rldojo"), "stop-head"], env=env, timeout=120, check=False
        )


def test_the_train_and_evaluate_quick_start(tmp_path: Path) -> None:
    env = _fresh_env(tmp_path / "data", _free_port())
    shell = Shell(tmp_path, env)
    lines = bash_lines("Quick start: train and evaluate")
    outputs = [shell.run(line) for line in lines]
    trained = next(out for out in outputs if out.startswith("results: ") or "results: " in out)
    assert re.search(r"best checkpoint: \S+checkpoint_\d{6}", trained)
    evaluate = next(i for i, line in enumerate(lines) if line.startswith("rldojo evaluate "))
    evaluated = json.loads(outputs[evaluate])
    # The tracking lines: the run the --mlflow-uri train logged, read back from MLflow.
    assert re.search(r"0 +tracked +0\.01 +10\.0", outputs[-1]), outputs[-1]
    assert evaluated["return_mean"] == 100.0 and evaluated["episodes"] == 10
    assert (tmp_path / "agent.mp4").stat().st_size > 1000


def test_the_environments_section(tmp_path: Path) -> None:
    """Its commands train a Gymnasium classic-control id and a toy-text one."""
    env = _fresh_env(tmp_path / "data", _free_port())
    shell = Shell(tmp_path, env)
    lines = bash_lines("Environments")
    outputs = [shell.run(line) for line in lines]
    assert "LunarLander-v3" in outputs[1] and "ALE/Pong-v5" in outputs[1]
    trained = [out for out in outputs if "best checkpoint: " in out]
    assert len(trained) == 2, outputs
    assert list((tmp_path / "results").glob("acrobot/DQN_Acrobot-v1_*/checkpoint_*"))
