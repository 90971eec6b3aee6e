"""The noise filters: known notices dropped, real errors kept."""

from __future__ import annotations

import subprocess
import sys

from service import quiet

SCRIPT = """
import logging, sys
from service import quiet
quiet.install()
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
logging.getLogger("ray.tune.utils.util").info("Install gputil for GPU system monitoring.")
logging.getLogger("ray.tune.utils.util").info("a real notice")

class ExitsWhileFinalized:
    def __del__(self):
        raise SystemExit(1)  # what Ray's SIGTERM handler does inside a finalizer

class FailsWhileFinalized:
    def __del__(self):
        raise ValueError("a real bug")

ExitsWhileFinalized()
FailsWhileFinalized()
"""


def test_known_noise_is_dropped_and_real_errors_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert "gputil" not in done.stderr and "a real notice" in done.stderr
    assert "SystemExit" not in done.stderr
    assert "ValueError: a real bug" in done.stderr


def test_rays_restartable_actor_line_is_dropped_from_job_logs(monkeypatch) -> None:
    monkeypatch.delenv("RLDOJO_DEBUG", raising=False)
    noise = (
        "[2026-12-04 20:01:28,078 E 12648 12648] core_worker.cc:2465: Actor with class name: "
        "'ReplayEnvRunner' and ID: 'dfd6ba230245a23909b7ea3501000000' has constructor arguments "
        "in the object store and max_restarts > 0. If the arguments in the object store go out "
        "of scope or are lost, the actor restart will fail. See "
        "https://github.com/ray-project/ray/issues/53727 for more details.\n"
    )
    real = "ValueError: the env cannot be built\n"
    assert quiet.without_noise_lines(f"start\n{noise}{real}") == f"start\n{real}"
    assert quiet.without_noise_lines(noise.rstrip("\n")) == noise.rstrip("\n")  # still written
    monkeypatch.setenv("RLDOJO_DEBUG", "1")
    assert quiet.without_noise_lines(noise) == noise
