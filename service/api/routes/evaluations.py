"""/v1/evaluations: score a job's checkpoint on the Ray cluster, under a protocol.

`protocol`: `book` (the env as the job trained) or `standard` (ALE games: sticky actions 0.25,
frame skip 4, 108,000-frame cap, whole games, raw score; epsilon 0.05 unless given). A finished
evaluation reports the protocol it used and, on ALE games, the human-normalized score.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from service.api.deps import EvaluationsDep, JobsDep, OwnedEvaluation, Owner, SettingsDep, StoreDep
from service.api.routes.jobs import CONFLICT, ERRORS
from service.schemas import EvaluationIn, EvaluationOut
from service.store import EvaluationRecord

router = APIRouter(prefix="/v1/evaluations", tags=["evaluations"], responses=ERRORS)


def evaluation_out(evaluation: EvaluationRecord) -> EvaluationOut:
    result = evaluation.result or {}
    return EvaluationOut(
        id=evaluation.id,
        job_id=evaluation.job_id,
        checkpoint_id=evaluation.checkpoint_id,
        episodes=evaluation.episodes,
        seed=evaluation.seed,
        video=evaluation.video,
        status=evaluation.status,
        message=evaluation.message,
        created_at=evaluation.created_at,
        updated_at=evaluation.updated_at,
        return_mean=result.get("return_mean"),
        return_std=result.get("return_std"),
        length_mean=result.get("length_mean"),
        returns=result.get("returns"),
        lengths=result.get("lengths"),
        protocol=result.get("protocol"),
        epsilon=result.get("epsilon"),
        seeds=result.get("seeds"),
        game=result.get("game"),
        human_normalized=result.get("human_normalized"),
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=CONFLICT)
def create_evaluation(
    request: EvaluationIn,
    owner: Owner,
    settings: SettingsDep,
    store: StoreDep,
    jobs: JobsDep,
    evaluations: EvaluationsDep,
) -> EvaluationOut:
    """Evaluate a checkpoint of your job or a shared one (an id from its list, or `best`)
    under `protocol` (`book` or `standard`)."""
    if request.episodes > settings.max_eval_episodes:
        detail = [
            {
                "loc": ["body", "episodes"],
                "msg": f"at most {settings.max_eval_episodes} episodes per evaluation",
            }
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    job = store.get_job(job_id=request.job_id)
    if job is None or (job.owner != owner and not job.shared):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {request.job_id}")
    directory = jobs.directory(job)
    checkpoint = directory.find_checkpoint(request.checkpoint_id)
    if checkpoint is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no checkpoint {request.checkpoint_id}")
    evaluation = evaluations.create(
        owner=owner,
        directory=directory,
        checkpoint=checkpoint,
        episodes=request.episodes,
        seed=request.seed,
        video=request.video,
        protocol=request.protocol,
        epsilon=request.epsilon,
    )
    return evaluation_out(evaluation)


@router.get("")
def list_evaluations(
    owner: Owner, store: StoreDep, evaluations: EvaluationsDep
) -> list[EvaluationOut]:
    """The caller's evaluations, newest first."""
    return [evaluation_out(evaluations.reconcile(e)) for e in store.list_evaluations(owner=owner)]


@router.get("/{evaluation_id}")
def get_evaluation(evaluation: OwnedEvaluation) -> EvaluationOut:
    """Status and, once done, `return_mean`, `return_std`, `length_mean` and per-episode returns."""
    return evaluation_out(evaluation)


@router.get(
    "/{evaluation_id}/video",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}, "description": "An MP4 of the first episode"}},
)
def evaluation_video(evaluation: OwnedEvaluation, evaluations: EvaluationsDep) -> StreamingResponse:
    """The greedy agent's first episode as an MP4 (404 until the evaluation wrote one)."""
    found = evaluations.video(evaluation)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"evaluation {evaluation.id} has no video")
    directory, path = found
    return StreamingResponse(directory.open_stream(path), media_type="video/mp4")
