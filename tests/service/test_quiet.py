"""The noise filters: known notices dropped, real errors kept."""

from __future__ import annotations

import subprocess
import sys

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
