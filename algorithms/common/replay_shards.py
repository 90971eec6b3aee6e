"""The replay memory's handle: `ReplayMemory` shards as Ray actors, one picklable object.

The algorithm starts the shards (`Replay.create`) and gives the handle to its EnvRunners, which
add episode chunks, and to its learners, which draw minibatches (`algorithms/common/replay.py`
describes the memory itself). An episode always goes to the same shard (by a hash of its id),
so its n-step windows and frame stacks stay whole; a minibatch is split evenly over the shards.
Each shard saves and restores its own contents, from the node it runs on.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from algorithms.common.replay import ReplayMemory
from algorithms.common.replay_chunks import ReplayChunk

MINIBATCHES_PER_CALL = 8  # minibatches fetched from a shard per round trip

# The memory as a Ray actor. It needs no CPU reservation: it works only when called, and on a
# 2-core machine the EnvRunners and the learner must not be kept waiting for a free CPU.
ReplayActor = ray.remote(num_cpus=0)(ReplayMemory)


class Replay:
    """The picklable handle of the (sharded) memory, given to EnvRunners and learners."""

    def __init__(self, shards: list[Any], prioritized: bool = False) -> None:
        self.shards = shards
        self.prioritized = prioritized

    @classmethod
    def create(cls, *, num_shards: int, capacity: int, seed: int | None, **kwargs: Any) -> Replay:
        """Start `num_shards` actors sharing `capacity` (a Ray cluster must be running).

        They are placed on this process's node where it has room (the local learner reads their
        rings from shared memory there), elsewhere otherwise.
        """
        per_shard = -(-capacity // num_shards)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        shards = [
            ReplayActor.options(scheduling_strategy=here).remote(
                per_shard, seed=None if seed is None else seed + 1000 * i, **kwargs
            )
            for i in range(num_shards)
        ]
        return cls(shards, prioritized=bool(kwargs.get("prioritized", False)))

    def _shard_of(self, episode_id: str) -> int:
        return zlib.crc32(episode_id.encode()) % len(self.shards)

    def add(self, chunks: Sequence[ReplayChunk]) -> dict[int, int]:
        """Store chunks (blocking until stored); returns {shard: transitions held}."""
        groups: dict[int, list[ReplayChunk]] = {}
        for chunk in chunks:
            groups.setdefault(self._shard_of(chunk["episode_id"]), []).append(chunk)
        refs = {shard: self.shards[shard].add.remote(group) for shard, group in groups.items()}
        return dict(zip(refs, ray.get(list(refs.values())), strict=True))

    def sample_async(self, batch_size: int, beta: float = 0.4, count: int = 1) -> list[Any]:
        """Start drawing `count` minibatches; `collect` the refs later (to overlap work)."""
        return [
            shard.sample_many.remote(n, count, beta)
            for shard, n in zip(self.shards, split(batch_size, len(self.shards)), strict=True)
            if n
        ]

    def collect(self, refs: list[Any]) -> list[dict[str, np.ndarray]]:
        """The minibatches of `sample_async`, shards concatenated; `shards` says where each is."""
        per_shard = [(i, part) for i, part in enumerate(ray.get(refs)) if part is not None]
        if not per_shard:
            raise RuntimeError("the replay memory is empty")
        count = len(per_shard[0][1])
        return [_concatenate([(i, part[j]) for i, part in per_shard]) for j in range(count)]

    def minibatches(
        self, batch_size: int, count: int, beta: float = 0.4
    ) -> Iterator[dict[str, np.ndarray]]:
        """`count` minibatches through the actors: chunks of them, one round trip each, the
        next chunk fetched while the caller trains on this one. Prioritized replay draws one
        at a time, so that each draw sees the priorities of the update before it."""
        per_call = 1 if self.prioritized else MINIBATCHES_PER_CALL
        remaining = count
        pending = self.sample_async(batch_size, beta, count=min(per_call, remaining))
        while remaining > 0:
            minibatches = self.collect(pending)
            remaining -= len(minibatches)
            if remaining > 0:
                pending = self.sample_async(batch_size, beta, count=min(per_call, remaining))
            yield from minibatches

    def sample(self, batch_size: int, beta: float = 0.4) -> dict[str, np.ndarray]:
        """A minibatch of `batch_size` transitions (blocking)."""
        return self.collect(self.sample_async(batch_size, beta))[0]

    def update_priorities(self, batch: dict[str, np.ndarray], td_errors: np.ndarray) -> None:
        """Send new priorities for a sampled minibatch (fire and forget)."""
        if not self.prioritized:
            return
        for i, shard in enumerate(self.shards):
            mine = batch["shards"] == i
            if mine.any():
                shard.update_priorities.remote(batch["indices"][mine], td_errors[mine])

    def stats(self) -> dict[str, float]:
        """The shards' `stats()`, summed (bytes per transition averaged)."""
        parts = ray.get([s.stats.remote() for s in self.shards])
        total = {k: float(sum(p[k] for p in parts)) for k in parts[0]}
        total["bytes_per_transition"] = total["allocated_bytes"] / max(total["capacity"], 1)
        return total

    def save(self, directory: str) -> None:
        """Each shard writes `shard_<i>.npz` into `directory` (from the node it runs on)."""
        ray.get([s.save.remote(f"{directory}/shard_{i}.npz") for i, s in enumerate(self.shards)])

    def restore(self, directory: str) -> None:
        """Load what `save` wrote into the shards (same number of shards)."""
        ray.get([s.restore.remote(f"{directory}/shard_{i}.npz") for i, s in enumerate(self.shards)])

    def kill(self) -> None:
        for shard in self.shards:
            ray.kill(shard)


def split(batch_size: int, shards: int) -> list[int]:
    """Rows of a minibatch that each shard gives: as even as possible, the first ones first."""
    return [batch_size // shards + (i < batch_size % shards) for i in range(shards)]


def _concatenate(parts: list[tuple[int, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """One minibatch from the shards' parts; its `shards` entry names each row's shard."""
    batch = {key: np.concatenate([part[key] for _, part in parts]) for key in parts[0][1]}
    batch["shards"] = np.concatenate([np.full(len(part["actions"]), i) for i, part in parts])
    return batch
