"""Evaluations: each writes `evaluations/<id>/result.json` (its score) and maybe a video."""

from __future__ import annotations

import json
from typing import Any

from service.jobdir.files import JobFiles

EVALUATION_RESULT = "result.json"
EVALUATION_VIDEO = "video.mp4"


class EvaluationFiles(JobFiles):
    """Where an evaluation's Ray job writes, and what it wrote."""

    def evaluation_uri(self, evaluation_id: str) -> str:
        """Where evaluation `evaluation_id` writes its result (a path or URI for its Ray job)."""
        return self._uri_of(f"{self.path}/evaluations/{evaluation_id}")

    def evaluation_result(self, evaluation_id: str) -> dict[str, Any] | None:
        text = self.read_text(f"evaluations/{evaluation_id}/{EVALUATION_RESULT}")
        return json.loads(text) if text else None

    def evaluation_video(self, evaluation_id: str) -> str | None:
        """The path of an evaluation's video, None when it has none."""
        path = f"{self.path}/evaluations/{evaluation_id}/{EVALUATION_VIDEO}"
        return path if self._exists(path) else None
