"""What the API stores for the driver: the job spec as submitted and the job compiled from it."""

from __future__ import annotations

import json
from typing import Any

from service.jobdir.files import JobFiles

SPEC = "spec.json"
COMPILED = "compiled.json"


class SpecFiles(JobFiles):
    """The spec (`spec.json`) and the compiled job (`compiled.json`, service/compiler.py)."""

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.write_text(SPEC, json.dumps(spec, indent=2))

    def read_spec(self) -> dict[str, Any] | None:
        text = self.read_text(SPEC)
        return json.loads(text) if text is not None else None

    def write_compiled(self, compiled: dict[str, Any]) -> None:
        """Store the compiled job (`CompiledJob.model_dump(mode="json")`) the driver trains."""
        self.write_text(COMPILED, json.dumps(compiled, indent=2, sort_keys=True))

    def read_compiled(self) -> dict[str, Any] | None:
        text = self.read_text(COMPILED)
        return json.loads(text) if text is not None else None
