"""A warm start's checks at submit (API side): the job a spec's `from_checkpoint` names must be
readable by the submitter, of the same algorithm, on an env with the same spaces, and hold the
checkpoint asked for (with a replay memory, when one is to be kept).

`resolve` gathers what the store and storage say of that job (`Parent`); `problems` is the pure
decision on it, each problem at the spec field it is about. A resolved start names the
checkpoint by id, so `"best"` stays the checkpoint that was best at submit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

import envs
from algorithms.common.warm_start import REPLAY
from service.compiler import WarmStartSource
from service.spec import JobSpec, SpecError
from service.spec_model import FromCheckpointSpec
from service.storage import Storage
from service.store import Store

Problem = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class Parent:
    """What a warm start needs to know of the job it starts from."""

    job_id: str
    algorithm: str
    spaces: tuple[gym.Space, gym.Space] | None  # None: its env cannot be built here
    checkpoint_id: str | None  # the one asked for, found; None: it has no such checkpoint
    checkpoint_ids: tuple[str, ...]  # all it has, when the one asked for is not among them
    has_replay: bool  # the checkpoint found holds a replay memory


def resolve(store: Store, storage: Storage, owner: str, spec: JobSpec) -> WarmStartSource:
    """The checkpoint `spec.from_checkpoint` names, checked.

    Raises:
        SpecError: the job is not the owner's nor shared, or does not match, or lacks the
            checkpoint; each problem at its `from_checkpoint` field.
    """
    asked = spec.from_checkpoint
    assert asked is not None, "only a spec with from_checkpoint is resolved"
    record = store.get_job(job_id=asked.job)
    if record is None or (record.owner != owner and not record.shared):
        raise _error([(("from_checkpoint", "job"), f"no job {asked.job} that you can read")])
    directory = storage.job(record.id)
    checkpoint = directory.find_checkpoint(asked.checkpoint)
    parent = Parent(
        job_id=record.id,
        algorithm=record.spec["algorithm"],
        spaces=_spaces(record.spec),
        checkpoint_id=checkpoint.id if checkpoint else None,
        # listed again only for the message of a checkpoint not found
        checkpoint_ids=() if checkpoint else tuple(c.id for c in directory.checkpoints()),
        has_replay=checkpoint is not None and directory.checkpoint_holds(checkpoint, REPLAY),
    )
    found = problems(spec, parent, envs.spaces(spec.env_id, spec.env_config))
    if found:
        raise _error(found)
    assert checkpoint is not None  # else a problem was found
    return WarmStartSource(
        job=record.id, checkpoint=checkpoint.id, uri=directory.checkpoint_uri(checkpoint)
    )


def naming_the_checkpoint(spec: JobSpec, source: WarmStartSource) -> JobSpec:
    """The spec as stored: its `from_checkpoint` names the checkpoint found (not "best")."""
    assert spec.from_checkpoint is not None
    named = spec.from_checkpoint.model_copy(update={"checkpoint": source.checkpoint})
    return spec.model_copy(update={"from_checkpoint": named})


def problems(spec: JobSpec, parent: Parent, spaces: tuple[gym.Space, gym.Space]) -> list[Problem]:
    """Why `spec` cannot start from `parent`'s checkpoint; nothing when it can."""
    asked: FromCheckpointSpec | None = spec.from_checkpoint
    assert asked is not None
    if parent.algorithm != spec.algorithm:
        message = f"job {parent.job_id} trained {parent.algorithm}; this job is {spec.algorithm}"
        return [(("from_checkpoint", "job"), message)]
    found: list[Problem] = []
    if parent.spaces is not None and not _same(parent.spaces, spaces):
        found.append(
            (
                ("from_checkpoint", "job"),
                f"job {parent.job_id}'s env has {_shown(parent.spaces)}; this job's has "
                f"{_shown(spaces)}: its network cannot be loaded",
            )
        )
    if parent.checkpoint_id is None:
        have = ", ".join(parent.checkpoint_ids[-5:]) or "none yet"
        message = f"job {parent.job_id} has no checkpoint {asked.checkpoint} (it has: {have})"
        found.append((("from_checkpoint", "checkpoint"), message))
    elif asked.keep_replay and not parent.has_replay:
        message = f"checkpoint {parent.checkpoint_id} holds no replay memory to keep"
        found.append((("from_checkpoint", "keep_replay"), message))
    return found


def _spaces(parent_spec: dict[str, Any]) -> tuple[gym.Space, gym.Space] | None:
    try:
        stored = JobSpec.model_validate(parent_spec)
        return envs.spaces(stored.env_id, stored.env_config)
    except (gym.error.Error, ValueError, TypeError):
        return None  # e.g. written by an older rldojo: the load itself will say what differs


def _same(left: tuple[gym.Space, gym.Space], right: tuple[gym.Space, gym.Space]) -> bool:
    return all(a == b for a, b in zip(left, right, strict=True))


def _shown(spaces: tuple[gym.Space, gym.Space]) -> str:
    observations, actions = spaces
    return f"observations {observations} and actions {actions}"


def _error(found: list[Problem]) -> SpecError:
    return SpecError([{"loc": list(location), "msg": message} for location, message in found])
