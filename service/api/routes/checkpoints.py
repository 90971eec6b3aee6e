"""/v1/jobs/{id}/checkpoints: list a job's checkpoints and download one as a .tar.gz."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from service.api.deps import CheckpointId, JobsDep, VisibleJob
from service.api.routes.jobs import ERRORS
from service.schemas import CheckpointOut

router = APIRouter(prefix="/v1/jobs/{job_id}/checkpoints", tags=["checkpoints"], responses=ERRORS)


@router.get("")
def list_checkpoints(job: VisibleJob, jobs: JobsDep) -> list[CheckpointOut]:
    """Each checkpoint's id, trial, iteration, env steps and mean return when it was written."""
    return [
        CheckpointOut(
            id=c.id,
            job_id=job.id,
            trial_id=c.trial_id,
            iteration=c.iteration,
            env_steps=c.env_steps,
            return_mean=c.return_mean,
        )
        for c in jobs.directory(job).checkpoints()
    ]


@router.get(
    "/{checkpoint_id}/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": {}}, "description": "A .tar.gz"}},
)
def checkpoint_archive(
    job: VisibleJob,
    jobs: JobsDep,
    checkpoint_id: CheckpointId,
    with_replay: Annotated[
        bool,
        Query(
            description="The whole checkpoint, as a resume reads it: the replay memory, "
            "optimizer and EnvRunner state too (by default only the config and weights)"
        ),
    ] = False,
) -> StreamingResponse:
    """The checkpoint as a streamed .tar.gz (`rldojo evaluate` takes it unpacked): its config
    and weights, or with `with_replay` all of it."""
    directory = jobs.directory(job)
    checkpoint = directory.find_checkpoint(checkpoint_id)
    if checkpoint is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no checkpoint {checkpoint_id}")
    filename = f"{job.id}-{checkpoint.id}.tar.gz"
    return StreamingResponse(
        directory.archive(checkpoint, whole=with_replay),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
