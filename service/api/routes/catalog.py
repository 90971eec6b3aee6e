"""/v1/algorithms and /v1/envs: what can be trained, with each algorithm's config schema."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from pydantic import Field, create_model
from pydantic_core import to_jsonable_python

import algorithms
from envs.catalog import trainable
from service.schemas import AlgorithmOut, EnvOut

router = APIRouter(prefix="/v1", tags=["catalog"])


@cache
def _describe(name: str) -> AlgorithmOut:
    entry = algorithms.get(name)
    known = algorithms.hyperparameters(name)
    fields: dict[str, Any] = {
        key: (hp.type, Field(default=hp.default, description=hp.description))
        for key, hp in known.items()
    }
    model = create_model(f"{entry.config_class.__name__}Overrides", **fields)
    defaults = {key: to_jsonable_python(hp.default, fallback=str) for key, hp in known.items()}
    return AlgorithmOut(
        name=name,
        summary=entry.summary,
        book_section=entry.book_section,
        default_env=entry.default_env,
        envs=list(entry.envs),
        default_config=defaults,
        config_schema=model.model_json_schema(),
    )


@router.get("/algorithms")
def list_algorithms() -> list[AlgorithmOut]:
    """Each algorithm with its default config and the JSON schema of what `config` may set."""
    found = []
    for name in algorithms.ALGORITHMS:
        try:
            found.append(_describe(name))
        except (ImportError, AttributeError):
            continue  # registered but not written yet
    return found


@router.get("/envs")
def list_envs() -> list[EnvOut]:
    """Every env id this cluster's Python can make and some algorithm trains on: its kind
    (read from its spaces), its spaces and those algorithms. Any of them is a job's `env`."""
    return [
        EnvOut(
            id=entry.id,
            observation=entry.kind.observation,
            action=entry.kind.action,
            observation_space=entry.observation_space,
            action_space=entry.action_space,
            algorithms=_trainers(entry.id),
        )
        for entry in trainable()
        if entry.kind is not None
    ]


@cache
def _trainers(env_id: str) -> list[str]:
    return [a.name for a in algorithms.ALGORITHMS.values() if a.refuses(env_id) is None]
