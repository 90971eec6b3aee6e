"""The shell text a Ray job runs on a node: this environment's program when the node has it at
the same path, the node's own from PATH otherwise. Run here with bash, as Ray Jobs runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.cluster import node_command

BIN = Path(sys.executable).parent
SHOW = ["-c", "import sys; print(sys.executable); print(sys.argv[1])", "a b 'c' $HOME"]


def _run(text: str, path: str) -> list[str]:
    env = dict(os.environ, PATH=path)
    done = subprocess.run(["bash", "-c", text], env=env, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_same_path_runs_this_environments_program() -> None:
    # A node whose PATH knows no such python still runs ours: the absolute path comes first.
    assert _run(node_command("python", SHOW), "/usr/bin:/bin") == [
        str(BIN / "python"),
        "a b 'c' $HOME",
    ]


def test_a_node_installed_elsewhere_runs_its_own_program() -> None:
    text = node_command("python", SHOW, own="/nonexistent/venv/bin/python")
    assert _run(text, f"{BIN}:/usr/bin:/bin") == [str(BIN / "python"), "a b 'c' $HOME"]
