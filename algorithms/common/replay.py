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
  actor), ask the actor for chunks of minibatches instead (`Replay.minibatches`).
- `Replay` (`replay_shards.py`) is the small picklable handle that the algorithm gives to
  EnvRunners and learners: it routes an episode to one shard and splits a minibatch over them.

The actor writes while learners read, guarded by a sequence lock in a small shared header
(`replay_rings.py`, with the rings' layout both sides share).

n-step returns (1 = the book's DQN) are computed in the memory (`n_step.py`).

Prioritized replay (Schaul et al. 2016) samples with probability p_i^alpha / sum_j p_j^alpha
from a sum tree and returns importance weights (N P(i))^-beta normalized by the batch maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import ray

from algorithms.common.n_step import n_step_windows
from algorithms.common.replay_chunks import ReplayChunk
from algorithms.common.replay_rings import (
    ADDED,
    ADDED_RESERVED,
    FRAMES_RESERVED,
    GENERATION,
    TRANSITION_KEYS,
    gather,
)
from algorithms.common.shared_arrays import SharedArrays
from algorithms.common.sum_tree import SumTree

# ---- the memory ------------------------------------------------------------------------------


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
        count, returns, next_obs, discounts = n_step_windows(
            steps["rewards"], steps["dones"], ended=ended, n_step=self.n_step, gamma=self.gamma
        )
        if count == 0:
            return 0
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
