"""The learner's side of the replay memory: minibatches read straight from shared memory.

A learner on the replay actors' node maps their rings (`shared_arrays.py`) read-only and draws
uniform minibatches itself, into buffers it reuses: no round trip to the actor, no copy
through Ray's object store. The actor keeps writing meanwhile; a row is kept only if no write
reached it while it was read (the sequence lock of `replay_rings.py`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import ray
import torch

from algorithms.common.replay_rings import (
    ADDED,
    ADDED_RESERVED,
    BATCH_DTYPES,
    FRAMES_RESERVED,
    GENERATION,
    gather,
)
from algorithms.common.replay_shards import Replay, split
from algorithms.common.shared_arrays import SharedArrays

logger = logging.getLogger(__name__)


class _ShardView:
    """One shard's rings and header, mapped read-only."""

    def __init__(self, layout: dict[str, Any]) -> None:
        self.header = SharedArrays.attach(layout["header"])["header"]
        self.arrays = SharedArrays.attach(layout["arrays"])
        self.generation = layout["generation"]
        self.capacity, self.frame_capacity = layout["capacity"], layout["frame_capacity"]
        self.stacked = layout["stacked"]


class SharedSampler:
    """Uniform minibatches drawn in this process from the rings of replay actors on its node.

    `SharedSampler.connect(replay)` gives one where every shard runs on this node with shared
    memory and the replay is uniform, else None (then sample through the actors).
    """

    def __init__(self, shards: list[Any], layouts: list[dict[str, Any]], seed: int | None) -> None:
        self.shards = shards
        self.views = [_ShardView(layout) for layout in layouts]
        self.rng = np.random.default_rng(seed)

    @classmethod
    def connect(cls, replay: Replay, seed: int | None = None) -> SharedSampler | None:
        if replay.prioritized or not ray.is_initialized():
            return None
        layouts = ray.get([shard.shared_layout.remote() for shard in replay.shards])
        node = ray.get_runtime_context().get_node_id()
        if any(layout is None or layout["node_id"] != node for layout in layouts):
            return None
        try:
            return cls(replay.shards, layouts, seed)
        except OSError as error:  # e.g. /proc of the actor not readable here
            logger.warning("sampling through the replay actors: %s", error)
            return None

    def empty_batch(self, batch_size: int) -> dict[str, np.ndarray]:
        """Arrays shaped for a minibatch of this replay's rows (weights 1: uniform replay)."""
        view = self.views[0]
        frames, stack = view.arrays["frames"], view.arrays["obs_slots"].shape[1]
        rows = (batch_size, stack) if view.stacked else (batch_size,)
        batch = {
            key: np.empty((*rows, *frames.shape[1:]), frames.dtype) for key in ("obs", "next_obs")
        }
        batch.update({key: np.empty(batch_size, dtype) for key, dtype in BATCH_DTYPES.items()})
        batch["weights"] = np.ones(batch_size, np.float32)
        return batch

    def host_buffers(
        self, batch_size: int, count: int, *, pinned: bool
    ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, torch.Tensor]]]:
        """`count` minibatch buffers to `sample_into`, as numpy arrays and as the tensors they
        view (in pinned memory when `pinned`, for copies to a GPU that do not block)."""
        template = self.empty_batch(batch_size)
        tensors = [
            {
                key: torch.from_numpy(value).clone().pin_memory()
                if pinned
                else torch.from_numpy(value.copy())
                for key, value in template.items()
            }
            for _ in range(count)
        ]
        return [{key: t.numpy() for key, t in buffer.items()} for buffer in tensors], tensors

    def sample_into(self, out: dict[str, np.ndarray]) -> None:
        """Fill `out` (obs, next_obs, actions, rewards, discounts: B rows each) with a fresh
        uniform minibatch, split over the shards as `Replay.sample` splits it."""
        start = 0
        for shard, rows in enumerate(split(len(out["actions"]), len(self.views))):
            part = {
                key: out[key][start : start + rows] for key in ("obs", "next_obs", *BATCH_DTYPES)
            }
            self._draw(shard, part)
            start += rows

    def _draw(self, shard: int, out: dict[str, np.ndarray]) -> None:
        missing = np.arange(len(out["actions"]))
        for _ in range(100):
            view = self._current(shard)
            header, capacity = view.header, view.capacity
            generation, added = int(header[GENERATION]), int(header[ADDED])
            size = min(added, capacity)
            if size == 0:
                raise RuntimeError("the replay memory is empty")
            serials = added - size + self.rng.integers(0, size, len(missing))
            whole = len(missing) == len(out["actions"])
            rows = gather(
                view.arrays,
                serials % capacity,
                stacked=view.stacked,
                out=dict(out) if whole else None,
            )
            # Keep the rows that no write reached while they were read.
            valid = (
                (int(header[GENERATION]) == generation)
                & (serials >= int(header[ADDED_RESERVED]) - capacity)
                & (rows["oldest"] >= int(header[FRAMES_RESERVED]) - view.frame_capacity)
            )
            if not whole:
                for key in out:
                    out[key][missing[valid]] = rows[key][valid]
            missing = missing[~valid]
            if len(missing) == 0:
                return
        raise RuntimeError("the replay memory holds no valid transition")

    def _current(self, shard: int) -> _ShardView:
        """The shard's view, mapped again after a restore gave it new rings."""
        view = self.views[shard]
        generation = int(view.header[GENERATION])
        while generation != view.generation:
            if generation % 2 == 0:  # not in the middle of a restore
                layout = ray.get(self.shards[shard].shared_layout.remote())
                if layout is None:
                    raise RuntimeError("the replay memory is empty")
                view = self.views[shard] = _ShardView(layout)
            generation = int(view.header[GENERATION])
        return view
