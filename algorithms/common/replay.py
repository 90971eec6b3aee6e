"""The replay memory of the value-based algorithms: a Ray actor that EnvRunners write to directly.

Data flow (style principle 5; RLlib's `appo_w_shared_data_actor.py` wires a shared actor alike):

    EnvRunner --ReplayChunk--> ReplayMemory actor(s) ==rings in shared memory==> Learner
                    (the driver only sends epsilon and receives metrics)

- EnvRunners (`replay_env_runner.py`) send compact episode chunks (`replay_chunks.py`): each
  new frame once, plus references that rebuild the frame stacks.
- `ReplayMemory` (run as a Ray actor, one or several shards) assembles n-step transitions and
  keeps them in fixed-size numpy rings; 1M Breakout transitions take about 7.3 GB instead of
  the 56 GB of stored stack pairs (book section 8, item 11).
- The rings live in shared memory (`shared_arrays.py`). A learner on the actor's node draws
  uniform minibatches by reading them itself (`replay_sampler.py`): no round trip, no copy through
  Ray's object store, so sampling costs the learner one gather per minibatch and the actor
  nothing. Learners on other nodes, and prioritized replay (whose sum tree lives in the
  actor), ask the actor for chunks of minibatches instead (`Replay.sample_async`).
- `Replay` is the small picklable handle that the algorithm gives to EnvRunners and learners:
  it routes an episode to one shard and splits a minibatch over the shards.

The actor writes while learners read. It publishes, in a small shared header, how far it is
about to overwrite (before writing) and how many transitions are complete (after writing); a
reader keeps a drawn row only if no write reached it while it was read, and redraws it
otherwise (a sequence lock; a restore marks the header odd while it rewrites everything).

n-step returns (1 = the book's DQN) are computed in the memory:
`R = sum_k gamma^k r_{t+k}` for k < n, stopping after a step that is terminal for the targets
(a game over, or a lost life when the writer is told to treat it so, as the book's DQN does);
the transition stores `discount = gamma^k` (0 after a terminal step) so that the learner's target
is `R + discount * max_a Q'(s_{t+k}, a)`. Steps whose n-step window is still open at the end of
a chunk wait in the memory for the next chunk of the same episode.

Prioritized replay (Schaul et al. 2016) samples with probability p_i^alpha / sum_j p_j^alpha
from a sum tree and returns importance weights (N P(i))^-beta normalized by the batch maximum.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from algorithms.common.replay_chunks import ReplayChunk
from algorithms.common.shared_arrays import SharedArrays

# The shared header's fields (int64). GENERATION is odd while the memory is being rewritten.
GENERATION, ADDED, ADDED_RESERVED, FRAMES_RESERVED = range(4)
TRANSITION_KEYS = ("obs_slots", "next_slots", "oldest", "actions", "rewards", "discounts")
BATCH_DTYPES = {"actions": np.int64, "rewards": np.float32, "discounts": np.float32}


def gather(
    arrays: dict[str, np.ndarray],
    index: np.ndarray,
    *,
    stacked: bool,
    out: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The transitions at ring positions `index`, frame stacks rebuilt (into `out` if given).

    Returns:
        obs and next_obs (B, S, *frame) for stacks, (B, *frame) otherwise; actions, rewards
        (n-step returns), discounts (B,) and oldest (B,), the first frame serial referenced.
    """
    out = {} if out is None else out
    for key, slots in (("obs", "obs_slots"), ("next_obs", "next_slots")):
        frame_ids = arrays[slots][index]  # (B, S)
        if not stacked:
            frame_ids = frame_ids[:, 0]
        out[key] = np.take(arrays["frames"], frame_ids, axis=0, out=out.get(key), mode="clip")
    for key in ("actions", "rewards", "discounts", "oldest"):
        out[key] = np.take(arrays[key], index, out=out.get(key), mode="clip")
    return out


# ---- the memory ------------------------------------------------------------------------------


class SumTree:
    """Sums of priorities over a binary tree, for proportional sampling in O(log N) per item."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(1, int(np.ceil(np.log2(capacity))))
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        nodes = np.asarray(indices, dtype=np.int64) + self.leaves
        self.tree[nodes] = priorities
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(indices, dtype=np.int64) + self.leaves]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index whose prefix-sum interval holds each value of `mass` (in [0, total))."""
        nodes = np.ones(len(mass), dtype=np.int64)
        mass = mass.astype(np.float64).copy()
        while nodes[0] < self.leaves:
            left = self.tree[2 * nodes]
            go_right = mass >= left
            mass -= left * go_right
            nodes = 2 * nodes + go_right
        return nodes - self.leaves


class ReplayMemory:
    """FIFO replay memory of n-step transitions with once-stored frames (see the module doc).

    Run it as a Ray actor (`ReplayActor`) or in-process; the arrays are allocated (in shared
    memory where the platform has it) at the first `add`, when the frame shape is known.

    Example:
        >>> memory = ReplayMemory(capacity=100, n_step=1, gamma=0.9)
        >>> obs = np.arange(8, dtype=np.float32).reshape(4, 2)  # 3 steps of a 2-float obs
        >>> chunk = ReplayChunk(episode_id="e", continues=False, stacked=False,
        ...     frames=obs, refs=np.arange(1, 5, dtype=np.int32)[:, None],
        ...     actions=np.array([0, 1, 0]), rewards=np.ones(3, np.float32),
        ...     dones=np.array([False, False, True]), ended=True)
        >>> memory.add([chunk])
        3
        >>> batch = memory.sample(2)
        >>> batch["obs"].shape, batch["next_obs"].shape
        ((2, 2), (2, 2))
    """

    def __init__(
        self,
        capacity: int,
        *,
        n_step: int = 1,
        gamma: float = 0.99,
        prioritized: bool = False,
        alpha: float = 0.6,
        priority_epsilon: float = 1e-6,
        seed: int | None = None,
    ) -> None:
        if capacity < 1 or n_step < 1:
            raise ValueError(f"capacity={capacity} and n_step={n_step} must be >= 1")
        self.capacity = capacity
        self.n_step = n_step
        self.gamma = gamma
        self.prioritized = prioritized
        self.alpha = alpha
        self.priority_epsilon = priority_epsilon
        self.rng = np.random.default_rng(seed)
        self.size = 0  # transitions held
        self.next_index = 0  # ring position of the next transition
        self.frames_written = 0  # serial number of the next frame
        self.added = 0  # transitions added over the lifetime
        self.dropped = 0  # transitions whose frames were unknown (after a restore) or evicted
        self.max_priority = 1.0
        self.stacked = False
        self.stack = 0
        self.frame_capacity = 0
        self.arrays: dict[str, np.ndarray] = {}
        self._shared: SharedArrays | None = None  # holds `arrays`
        self._header = SharedArrays({"header": ((4,), np.int64)})  # never reallocated
        self.header = self._header.arrays["header"]
        self.header[:] = 0
        self.tree: SumTree | None = SumTree(capacity) if prioritized else None
        # Per open episode: (carry serials (S,), pending steps whose n-step window is open).
        self.open: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    # ---- writing ---------------------------------------------------------------------------

    def _allocate(self, frame_shape: tuple[int, ...], dtype: np.dtype, stack: int) -> None:
        """Allocate the rings; frames get a little slack for episode starts and open windows."""
        self.stack = stack
        frame_bytes = int(np.prod(frame_shape)) * np.dtype(dtype).itemsize
        slack = self.capacity if frame_bytes <= 1024 else max(self.capacity // 32, 256)
        self.frame_capacity = self.capacity + slack
        cap = self.capacity
        specs = {
            "frames": ((self.frame_capacity, *frame_shape), dtype),
            "obs_slots": ((cap, stack), np.int32),
            "next_slots": ((cap, stack), np.int32),
            "oldest": ((cap,), np.int64),  # serial of the oldest frame referenced
            "actions": ((cap,), np.int64),
            "rewards": ((cap,), np.float32),
            "discounts": ((cap,), np.float32),
        }
        self.arrays = {}
        self._shared = SharedArrays(specs)
        self.arrays = self._shared.arrays

    def add(self, chunks: Sequence[ReplayChunk]) -> int:
        """Store the frames and the finished n-step transitions of episode chunks.

        Returns:
            The number of transitions held afterwards.
        """
        for chunk in chunks:
            self._add_chunk(chunk)
        return self.size

    def _add_chunk(self, chunk: ReplayChunk) -> None:
        stack = chunk["refs"].shape[1]
        if not self.arrays:
            self._allocate(chunk["frames"].shape[1:], chunk["frames"].dtype, stack)
            self.stacked = chunk["stacked"]
            self.header[GENERATION] += 2  # new rings: readers fetch the new layout
        frames = chunk["frames"]
        serials = self.frames_written + np.arange(len(frames), dtype=np.int64)
        # Readers drop rows whose frames this write may reach: announce it before writing.
        self.header[FRAMES_RESERVED] = self.frames_written + len(frames)
        self.arrays["frames"][serials % self.frame_capacity] = frames
        self.frames_written += len(frames)

        known = self.open.pop(chunk["episode_id"], None) if chunk["continues"] else None
        carry = known[0] if known is not None else np.full(stack, -1, dtype=np.int64)
        stacks = np.concatenate([carry, serials])[chunk["refs"]]  # (T + 1, S) frame serials
        steps = {
            "stacks": stacks[:-1],
            "actions": np.asarray(chunk["actions"], dtype=np.int64),
            "rewards": np.asarray(chunk["rewards"], dtype=np.float32),
            "dones": np.asarray(chunk["dones"], dtype=bool),
        }
        if known is not None:  # steps of this episode still waiting for their n-step window
            steps = {key: np.concatenate([known[1][key], steps[key]]) for key in steps}
        observations = np.concatenate([steps["stacks"], stacks[-1:]])
        pending = self._store_n_step(observations, steps, chunk["ended"])
        if not chunk["ended"]:
            self.open[chunk["episode_id"]] = (
                stacks[-1],
                {k: v[pending:] for k, v in steps.items()},
            )
            while len(self.open) > 10_000:  # episodes of EnvRunners that went away
                self.open.pop(next(iter(self.open)))

    def _store_n_step(
        self, observations: np.ndarray, steps: dict[str, np.ndarray], ended: bool
    ) -> int:
        """Write every transition whose n-step window is complete; return how many were ready."""
        length = len(steps["actions"])
        start = np.arange(length)
        returns = np.zeros(length, dtype=np.float64)
        next_obs = start.copy()  # index into `observations` of each window's last observation
        open_window = np.ones(length, dtype=bool)  # no terminal step seen yet
        for k in range(self.n_step):
            step = start + k
            use = open_window & (step < length)
            returns[use] += self.gamma**k * steps["rewards"][step[use]]
            next_obs[use] = step[use] + 1
            terminal = np.zeros(length, dtype=bool)
            terminal[use] = steps["dones"][step[use]]
            open_window &= ~terminal
        used = next_obs - start
        ready = ~open_window | (used == self.n_step) | ended
        # Ready steps form a prefix: the last n - 1 steps of an unfinished chunk may wait.
        count = int(np.argmin(ready)) if not ready.all() else length
        if count == 0:
            return 0
        discounts = np.where(open_window, self.gamma ** used.astype(np.float64), 0.0)
        obs_stacks = observations[:count]
        next_stacks = observations[next_obs[:count]]
        valid = (obs_stacks >= 0).all(axis=1) & (next_stacks >= 0).all(axis=1)
        self.dropped += int((~valid).sum())
        self._write_transitions(
            obs_stacks[valid],
            next_stacks[valid],
            steps["actions"][:count][valid],
            returns[:count][valid],
            discounts[:count][valid],
        )
        return count

    def _write_transitions(
        self,
        obs_stacks: np.ndarray,
        next_stacks: np.ndarray,
        actions: np.ndarray,
        returns: np.ndarray,
        discounts: np.ndarray,
    ) -> None:
        count = len(actions)
        if count == 0:
            return
        index = (self.next_index + np.arange(count)) % self.capacity
        self.header[ADDED_RESERVED] = self.added + count  # these rows are about to change
        arrays = self.arrays
        arrays["obs_slots"][index] = obs_stacks % self.frame_capacity
        arrays["next_slots"][index] = next_stacks % self.frame_capacity
        arrays["oldest"][index] = np.minimum(obs_stacks.min(axis=1), next_stacks.min(axis=1))
        arrays["actions"][index] = actions
        arrays["rewards"][index] = returns
        arrays["discounts"][index] = discounts
        if self.tree is not None:
            self.tree.set(index, np.full(count, self.max_priority**self.alpha))
        self.next_index = int((self.next_index + count) % self.capacity)
        self.size = min(self.capacity, self.size + count)
        self.added += count
        self.header[ADDED] = self.added  # complete: readers may draw them now

    # ---- reading ---------------------------------------------------------------------------

    def _valid(self, index: np.ndarray) -> np.ndarray:
        """Whether every frame of these transitions is still in the frame ring."""
        return self.arrays["oldest"][index] >= self.frames_written - self.frame_capacity

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices (and their sampling probabilities) of `batch_size` valid transitions."""
        index = np.empty(batch_size, dtype=np.int64)
        probs = np.empty(batch_size, dtype=np.float64)
        missing = np.arange(batch_size)
        for _ in range(100):
            if self.tree is not None:
                total = self.tree.total
                mass = (np.arange(len(missing)) + self.rng.random(len(missing))) / len(missing)
                drawn = np.minimum(self.tree.find(mass * total), self.size - 1)
                drawn_probs = self.tree.get(drawn) / total
            else:
                drawn = self.rng.integers(0, self.size, size=len(missing))
                drawn_probs = np.full(len(missing), 1.0 / self.size)
            ok = self._valid(drawn) & (drawn_probs > 0)
            index[missing[ok]], probs[missing[ok]] = drawn[ok], drawn_probs[ok]
            if self.tree is not None and not ok.all():
                self.tree.set(drawn[~ok], np.zeros(int((~ok).sum())))  # evicted frames
            missing = missing[~ok]
            if len(missing) == 0:
                return index, probs
        raise RuntimeError("the replay memory holds no valid transition")

    def sample(self, batch_size: int, beta: float = 0.4) -> dict[str, np.ndarray] | None:
        """A uniform (or prioritized) minibatch, with frame stacks rebuilt; None while empty.

        Returns:
            obs (B, *obs_shape), actions (B,), rewards (B,) n-step returns, next_obs,
            discounts (B,) gamma^k or 0, weights (B,) importance weights (1 when uniform) and
            indices (B,) for `update_priorities`.
        """
        if self.size == 0:
            return None
        index, probs = self._draw(batch_size)
        batch = gather(self.arrays, index, stacked=self.stacked)
        del batch["oldest"]
        if self.tree is not None:
            weights = (self.size * probs) ** (-beta)
            batch["weights"] = (weights / weights.max()).astype(np.float32)
        else:
            batch["weights"] = np.ones(batch_size, dtype=np.float32)
        batch["indices"] = index
        return batch

    def sample_many(
        self, batch_size: int, count: int, beta: float = 0.4
    ) -> list[dict[str, np.ndarray]] | None:
        """`count` minibatches in one call: one round trip to the actor instead of `count`."""
        if self.size == 0:
            return None
        return [self.sample(batch_size, beta) for _ in range(count)]  # type: ignore[misc]

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of sampled transitions to (|TD error| + epsilon)."""
        if self.tree is None:
            return
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.priority_epsilon
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.set(np.asarray(indices), priorities**self.alpha)

    # ---- state -----------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        """Size and memory use; `bytes_per_transition` counts the allocated rings at capacity."""
        allocated = sum(a.nbytes for a in self.arrays.values())
        if self.tree is not None:
            allocated += self.tree.tree.nbytes
        return {
            "size": self.size,
            "capacity": self.capacity,
            "added": self.added,
            "dropped": self.dropped,
            "frames_written": self.frames_written,
            "open_episodes": len(self.open),
            "allocated_bytes": allocated,
            "bytes_per_transition": allocated / self.capacity,
        }

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume sampling (not the open episodes of live EnvRunners)."""
        frames_held = min(self.frames_written, self.frame_capacity)
        state: dict[str, Any] = {
            "capacity": self.capacity,
            "n_step": self.n_step,
            "size": self.size,
            "next_index": self.next_index,
            "frames_written": self.frames_written,
            "added": self.added,
            "dropped": self.dropped,
            "max_priority": self.max_priority,
            "stacked": self.stacked,
            "rng": self.rng.bit_generator.state,
        }
        if self.arrays:
            state["frame_shape"] = self.arrays["frames"].shape[1:]
            state["frame_dtype"] = self.arrays["frames"].dtype.str
            state["stack"] = self.stack
            state["frames"] = self.arrays["frames"][:frames_held].copy()
            for key in TRANSITION_KEYS:
                state[key] = self.arrays[key][: self.size].copy()
            if self.tree is not None:
                state["priorities"] = self.tree.get(np.arange(self.size))
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore `get_state()`'s output (same capacity and n-step)."""
        if state["capacity"] != self.capacity or state["n_step"] != self.n_step:
            raise ValueError(
                f"replay state has capacity={state['capacity']}, n_step={state['n_step']}; "
                f"this memory has capacity={self.capacity}, n_step={self.n_step}"
            )
        self.header[GENERATION] += 1  # odd: readers keep nothing they read from now on
        for key in ("size", "next_index", "frames_written", "added", "dropped"):
            setattr(self, key, int(state[key]))
        self.max_priority = float(state["max_priority"])
        self.stacked = bool(state["stacked"])
        self.rng.bit_generator.state = state["rng"]
        self.open = {}
        self.arrays = {}
        if self.tree is not None:
            self.tree = SumTree(self.capacity)
        if "frames" in state:
            shape, dtype = tuple(state["frame_shape"]), np.dtype(state["frame_dtype"])
            self._allocate(shape, dtype, state["stack"])
            frames = state["frames"]
            self.arrays["frames"][: len(frames)] = frames
            for key in TRANSITION_KEYS:
                self.arrays[key][: self.size] = state[key]
            if self.tree is not None and self.size:
                self.tree.set(np.arange(self.size), state["priorities"])
        self.header[[ADDED, ADDED_RESERVED]] = self.added
        self.header[FRAMES_RESERVED] = self.frames_written
        self.header[GENERATION] += 1  # even again: a new layout to fetch

    def shared_layout(self) -> dict[str, Any] | None:
        """What a `SharedSampler` on this node needs to map the rings; None if it cannot."""
        if not self.arrays or self._shared is None or self._shared.layout() is None:
            return None
        return {
            "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "header": self._header.layout(),
            "arrays": self._shared.layout(),
            "generation": int(self.header[GENERATION]),
            "capacity": self.capacity,
            "frame_capacity": self.frame_capacity,
            "stacked": self.stacked,
        }

    def save(self, path: str) -> None:
        """Write `get_state()` to `path` (an .npz file) from where the memory runs."""
        state = self.get_state()
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        with open(path, "wb") as handle:
            np.savez(handle, meta=np.array([meta], dtype=object), **arrays)  # type: ignore[arg-type]

    def restore(self, path: str) -> None:
        """Load a file written by `save`."""
        with np.load(path, allow_pickle=True) as data:
            state = dict(data["meta"][0])
            state.update({k: data[k] for k in data.files if k != "meta"})
        self.set_state(state)


# The memory as a Ray actor. It needs no CPU reservation: it works only when called, and on a
# 2-core machine the EnvRunners and the learner must not be kept waiting for a free CPU.
ReplayActor = ray.remote(num_cpus=0)(ReplayMemory)


class Replay:
    """The picklable handle of the (sharded) memory, given to EnvRunners and learners.

    An episode always goes to the same shard (by a hash of its id), so its n-step windows and
    frame stacks stay whole; a minibatch is split evenly over the shards.
    """

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
