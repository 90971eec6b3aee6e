"""Ray's and RLlib's known noise, kept out of job logs and CLI output.

Every run printed the same lines that say nothing about the job: that RLlib's new API stack is
on (rldojo uses nothing else), deprecation notices about RLlib's own internals, and a hint to
install gputil; and, when Ray ends a worker at shutdown, the "Exception ignored in ... __del__"
traceback of the SystemExit its SIGTERM handler raises inside a finalizer. `install()` drops
exactly those; `RLDOJO_DEBUG=1` keeps everything. Ray's C++ core also writes a line to every DQN
driver's stderr (its EnvRunner actors restart on failure and have their constructor arguments
in the object store), which reads as an error and is none: `without_noise_lines` drops it from
the job logs the API serves.
It runs in the CLI, in the API, and in every Ray worker of a training job
(`worker_process_setup_hook`), where most of these lines are logged.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

# (logger, what its noise says): only these records are dropped, never a logger as a whole.
NOISE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ray.rllib.algorithms.algorithm_config", re.compile(r"on the new API stack!")),
    ("ray._common.deprecation", re.compile(r"^DeprecationWarning: `RLModule\(config=")),
    ("ray.tune.utils.util", re.compile(r"^Install gputil")),
)


# Whole lines of a driver's output that say nothing about the job (no logger to filter: C++).
NOISE_LINES: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"core_worker\.cc:\d+: Actor with class name: '\w+' and ID: '\w+' has constructor "
        r"arguments in the object store and max_restarts > 0"
    ),
)


def without_noise_lines(text: str) -> str:
    """`text` less its complete lines of known noise, unless RLDOJO_DEBUG is set."""
    if os.environ.get("RLDOJO_DEBUG"):
        return text
    lines = text.splitlines(keepends=True)
    return "".join(
        line
        for line in lines
        if not (line.endswith("\n") and any(p.search(line) for p in NOISE_LINES))
    )


class _DropNoise(logging.Filter):
    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def _exit_in_finalizer_is_quiet(unraisable: Any) -> None:
    """A worker told to exit while a finalizer runs is not an error worth a traceback."""
    if isinstance(unraisable.exc_value, SystemExit):
        return
    sys.__unraisablehook__(unraisable)


def install() -> None:
    """Drop the known noise in this process (once), unless RLDOJO_DEBUG is set."""
    if os.environ.get("RLDOJO_DEBUG"):
        return
    for name, pattern in NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(pattern))
    sys.unraisablehook = _exit_in_finalizer_is_quiet


# What `ray.init(runtime_env=...)` passes to every worker of a training job.
WORKER_SETUP = {"worker_process_setup_hook": "service.quiet.install"}
