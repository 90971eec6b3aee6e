"""What every throughput bench does with its result: print it, and record it unless testing."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def machine() -> str:
    """This machine, as the records name it (its GPU by `nvidia-smi`'s name, if it has one)."""
    return f"{platform.node()}, {os.cpu_count()} CPUs, {gpu_name() or 'no GPU'}"


def gpu_name() -> str | None:
    """The first GPU's name and memory as `nvidia-smi` reports them; None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
    try:
        found = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    first = found.stdout.strip().splitlines()
    return first[0].strip() if first else None


def report(result: dict[str, Any], out: str, *, as_test: bool, ok: bool) -> None:
    """Print `result`; under `--as-test` fail unless `ok`, otherwise write it to `out` (JSON)."""
    print(json.dumps(result, indent=1))
    if as_test:
        assert ok, result
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
