"""What every throughput bench does with its result: print it, and record it unless testing."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> str:
    """This machine, as the records name it."""
    return f"{platform.node()}, {os.cpu_count()} CPUs, no GPU"


def report(result: dict[str, Any], out: str, *, as_test: bool, ok: bool) -> None:
    """Print `result`; under `--as-test` fail unless `ok`, otherwise write it to `out` (JSON)."""
    print(json.dumps(result, indent=1))
    if as_test:
        assert ok, result
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
