"""/v1/compare and /v1/leaderboard: runs side by side, and the best evaluated checkpoints.

Both read only what the caller may see: their own jobs and the ones other owners shared. The
game an Atari job plays is part of its env's identity (`envs.atari_scores.game_of`): compare
shows it, and the leaderboard ranks each (env, game) on its own, by human-normalized score
where the game has a reference and by mean return otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from algorithms.common import metrics
from envs.atari_scores import game_of_spec, human_normalized, same_game
from service import plots
from service.api.deps import JobsDep, Owner, StoreDep
from service.api.routes.jobs import ERRORS, job_out
from service.schemas import CompareCurve, CompareOut, LeaderboardEntry
from service.status import JobStatus
from service.store import EvaluationRecord, JobRecord, Store
from service.text import PlainText

router = APIRouter(prefix="/v1", tags=["compare"], responses=ERRORS)

# Spec fields that say how a run was set up (besides its resolved config).
SPEC_FIELDS = ("algorithm", "env", "env_config", "seed", "stop", "num_samples")


def _visible(store: Store, owner: str, job_id: str) -> JobRecord:
    job = store.get_job(job_id=job_id)
    if job is None or (job.owner != owner and not job.shared):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return job


def differences(jobs: list[JobRecord]) -> dict[str, dict[str, Any]]:
    """The settings whose values are not the same for every job: name -> {job id: value}."""
    settings: dict[str, dict[str, Any]] = {}
    for job in jobs:
        values = {f"spec.{key}": job.spec.get(key) for key in SPEC_FIELDS}
        values["game"] = game_of_spec(job.spec)
        values.update({f"config.{k}": v for k, v in (job.resolved_config or {}).items()})
        for key, value in values.items():
            settings.setdefault(key, {})[job.id] = value
    return {
        key: by_job
        for key, by_job in sorted(settings.items())
        if len(by_job) < len(jobs) or len({repr(v) for v in by_job.values()}) > 1
    }


@router.get("/compare")
def compare(
    owner: Owner,
    store: StoreDep,
    jobs: JobsDep,
    ids: Annotated[PlainText, Query(max_length=2000, description="Job ids, comma-separated")],
    metric: Annotated[PlainText, Query(max_length=200)] = metrics.EPISODE_RETURN_MEAN,
    x: Annotated[PlainText, Query(max_length=200)] = metrics.ENV_STEPS,
) -> CompareOut:
    """Learning curves of several jobs on one metric, and the settings that differ."""
    wanted = list(dict.fromkeys(i.strip() for i in ids.split(",") if i.strip()))
    if not 1 <= len(wanted) <= 20:
        detail = [{"loc": ["query", "ids"], "msg": "give 1 to 20 job ids, comma-separated"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    found = [_visible(store, owner, job_id) for job_id in wanted]
    drawn = []
    for job in found:
        for curve in plots.curves(jobs.directory(job).rows(), metric=metric, x=x):
            drawn.append(
                CompareCurve(
                    job_id=job.id,
                    trial_id=curve.trial_id,
                    x=curve.x,
                    y=curve.y,
                    smoothed=curve.smoothed,
                )
            )
    return CompareOut(
        jobs=[job_out(job) for job in found],
        metric=metric,
        x=x,
        curves=drawn,
        differences=differences(found),
    )


@router.get("/leaderboard")
def leaderboard(
    owner: Owner,
    store: StoreDep,
    env: Annotated[PlainText | None, Query(max_length=200)] = None,
    game: Annotated[
        PlainText | None,
        Query(max_length=200, description="Only this ALE game (Pong, ALE/Pong-v5)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[LeaderboardEntry]:
    """The best evaluated checkpoints, ranked within each env and game, per env/game if given.

    One entry per checkpoint: its best evaluation (by human-normalized score on an ALE game
    with a reference, else by mean return), with the protocol it was played under. Entries of
    one (env, game) are contiguous, in order of env and game. Only checkpoints of jobs you may
    see.
    """
    visible = {job.id: job for job in store.list_jobs(visible_to=owner, env=env)}
    best: dict[tuple[str, str], LeaderboardEntry] = {}
    for evaluation in store.list_evaluations(status=JobStatus.SUCCEEDED):
        job = visible.get(evaluation.job_id)
        entry = _entry(job, evaluation) if job is not None else None
        if entry is None or (game is not None and not same_game(entry.game, game)):
            continue
        key = (entry.job_id, entry.checkpoint_id)
        if key not in best or _score(entry) > _score(best[key]):
            best[key] = entry
    return rank(list(best.values()))[:limit]


def _entry(job: JobRecord, evaluation: EvaluationRecord) -> LeaderboardEntry | None:
    """The leaderboard's line for one evaluation, None if it has no score."""
    result = evaluation.result or {}
    score = result.get("return_mean")
    if not isinstance(score, int | float):
        return None
    game = game_of_spec(job.spec)
    return LeaderboardEntry(
        env=str(job.spec.get("env")),
        algorithm=str(job.spec.get("algorithm")),
        job_id=job.id,
        job_name=job.name,
        owner=job.owner,
        checkpoint_id=evaluation.checkpoint_id,
        return_mean=float(score),
        return_std=result.get("return_std"),
        episodes=evaluation.episodes,
        evaluation_id=evaluation.id,
        evaluated_at=evaluation.updated_at,
        game=game,
        protocol=str(result.get("protocol", "book")),
        human_normalized=human_normalized(game, float(score)),
    )


def _score(entry: LeaderboardEntry) -> tuple[float, int]:
    """What ranks entries of one env and game: the normalized score if any, then episodes."""
    value = entry.human_normalized if entry.human_normalized is not None else entry.return_mean
    return value, entry.episodes


def rank(entries: list[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """Best first within each (env, game); the groups in order of env and game.

    Scores of different games never meet: a Space Invaders 0.0 is not ranked against a Pong
    -21.0. Where entries span envs without games (CartPole, GridWorld), each env is its own
    group too.
    """
    groups: dict[tuple[str, str], list[LeaderboardEntry]] = {}
    for entry in entries:
        groups.setdefault((entry.env, entry.game or ""), []).append(entry)
    for members in groups.values():
        members.sort(key=lambda e: (-_score(e)[0], -e.episodes, e.evaluated_at))
    return [entry for key in sorted(groups) for entry in groups[key]]
