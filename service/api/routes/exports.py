"""GET /v1/jobs/{id}/checkpoints/{name}/export: a checkpoint's greedy policy as a .zip.

The zip holds the model (`policy.onnx`, `policy.pt` or the table `policy.npy`) and
`policy.json` (`service/policy_format.py`); `rldojo play` runs it without Ray or torch. The
export loads torch and RLlib, so it runs in its own process (`python -m algorithms.export`),
never in the API process, and at most `CONCURRENT_EXPORTS` at once.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from service.api.deps import CheckpointId, JobsDep, VisibleJob
from service.api.routes.jobs import ERRORS
from service.policy_format import SUFFIXES

router = APIRouter(prefix="/v1/jobs/{job_id}/checkpoints", tags=["checkpoints"], responses=ERRORS)

CONCURRENT_EXPORTS = 2  # each export process holds torch and RLlib (~1 GB)
EXPORT_TIMEOUT_S = 300.0
_exports = threading.BoundedSemaphore(CONCURRENT_EXPORTS)


@router.get(
    "/{checkpoint_id}/export",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "policy.<ext> + policy.json"},
        422: {"description": "The format does not fit the checkpoint"},
        429: {"description": "Too many exports at once; retry"},
    },
)
def export_checkpoint(
    job: VisibleJob,
    jobs: JobsDep,
    checkpoint_id: CheckpointId,
    format: Annotated[
        Literal["auto", "onnx", "torchscript", "table"],
        Query(description="auto: the table of a tabular algorithm, else ONNX"),
    ] = "auto",
) -> Response:
    """The checkpoint's greedy policy and its description, zipped (`rldojo export` unpacks it)."""
    directory = jobs.directory(job)
    checkpoint = directory.find_checkpoint(checkpoint_id)
    if checkpoint is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no checkpoint {checkpoint_id}")
    if not _exports.acquire(blocking=False):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{CONCURRENT_EXPORTS} exports are running; retry in a minute",
            headers={"Retry-After": "30"},
        )
    try:
        data = _export_zip(directory.checkpoint_uri(checkpoint), format)
    finally:
        _exports.release()
    filename = f"{job.id}-{checkpoint.id}-policy.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _export_zip(checkpoint_uri: str, format: str) -> bytes:
    """Run the export process on the checkpoint; its two files, zipped."""
    with tempfile.TemporaryDirectory(prefix="rldojo-export-") as scratch:
        folder = FilePath(scratch)
        command = [sys.executable, "-m", "algorithms.export", checkpoint_uri, "--format", format]
        # The model's name follows the format the process resolves; it is told a folder to use.
        command += ["--out", str(folder / "policy")]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise HTTPException(
                status.HTTP_504_GATEWAY_TIMEOUT, f"the export took over {EXPORT_TIMEOUT_S:.0f} s"
            ) from None
        last = (done.stderr.strip().splitlines() or ["the export failed"])[-1]
        if done.returncode == 2:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, last.removeprefix("error: "))
        if done.returncode != 0:
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"export failed: {last}")
        files = [path for path in folder.iterdir() if path.suffix in (*SUFFIXES.values(), ".json")]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.name)
        return buffer.getvalue()
