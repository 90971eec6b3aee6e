"""What EnvRunners send to the replay memory: compact episode chunks with frames sent once.

An observation is a stack of S frames (Atari: S = 4 uint8 84x84 frames, oldest first; vectors:
S = 1, the frame is the whole observation). Consecutive observations of an episode share S - 1
frames, so a chunk carries each new frame once plus, per observation, S references into the
frames (`refs`); the memory rebuilds the stacks by indexing (book section 8, item 11).

Two writers build chunks:
- `episode_chunk` turns an RLlib `SingleAgentEpisode` chunk (any env, RLlib's own sampling)
  into a chunk, finding by comparison where a stack shifted by one frame;
- `VectorChunks` records a frame-stacking vector env (`envs.atari_vector.AtariVector`) step
  by step straight into arrays, where every step shifts the stack by one frame, and cuts them
  into per-env chunks at the end of a fragment.
"""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

import numpy as np
from gymnasium import spaces


class ReplayChunk(TypedDict):
    """One episode chunk as the EnvRunner sends it (T steps).

    `refs` index the virtual frame list `carry + frames`, where `carry` is the S frames of the
    last observation the memory holds for this episode (only meaningful when `continues`).
    """

    episode_id: str
    continues: bool  # the episode started in an earlier chunk
    stacked: bool  # observations are (S, ...) frame stacks (else S = 1, frame = observation)
    frames: np.ndarray  # (F, *frame_shape) frames not sent before
    refs: np.ndarray  # (T + 1, S) int32 frame references of observations 0..T
    actions: np.ndarray  # (T,)
    rewards: np.ndarray  # (T,) float32
    dones: np.ndarray  # (T,) bool: the step is terminal for the targets (no bootstrap)
    ended: bool  # the episode ended at the last step (terminated or truncated)


def is_frame_stack(space: spaces.Space) -> bool:
    """True for image stacks stored frame by frame: uint8 Box of shape (S, H, W)."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def episode_chunk(episode: Any, *, stacked: bool, life_loss_terminal: bool = False) -> ReplayChunk:
    """Compact one RLlib `SingleAgentEpisode` chunk for the memory.

    Args:
        episode: A (numpy'd or not) episode chunk from `EnvRunner.sample`.
        stacked: Observations are (S, H, W) frame stacks; store each frame once.
        life_loss_terminal: Steps whose info says `life_lost` are terminal for the targets.

    Returns:
        The chunk to `add`.
    """
    obs = np.asarray(episode.get_observations())
    actions = np.asarray(episode.get_actions())
    rewards = np.asarray(episode.get_rewards(), dtype=np.float32)
    dones = np.zeros(len(actions), dtype=bool)
    if life_loss_terminal:
        infos = episode.get_infos()[1:]  # infos align with observations; skip the first
        dones[:] = [bool(info.get("life_lost", False)) for info in infos]
    if episode.is_terminated:
        dones[-1] = True
    continues = episode.t_started > 0
    frames, refs = _stack_refs(obs, continues) if stacked else _flat_refs(obs, continues)
    return ReplayChunk(
        episode_id=str(episode.id_),
        continues=continues,
        stacked=stacked,
        frames=frames,
        refs=refs,
        actions=actions,
        rewards=rewards,
        dones=dones,
        ended=bool(episode.is_done),
    )


def _flat_refs(obs: np.ndarray, continues: bool) -> tuple[np.ndarray, np.ndarray]:
    """Vector observations: each observation is one frame; the carry is the first one."""
    steps = len(obs)
    frames = obs[1:] if continues else obs
    refs = np.arange(1, steps + 1, dtype=np.int32)  # index 0 is the carry
    if continues:
        refs = np.concatenate([[0], refs[:-1]]).astype(np.int32)
    return np.ascontiguousarray(frames), refs[:, None]


def _stack_refs(obs: np.ndarray, continues: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frame stacks: send the newest frame of each step when the stack shifted by one."""
    steps, size = obs.shape[0], obs.shape[1]
    # shifted[t]: obs[t + 1] is obs[t] minus its oldest frame plus one new frame.
    shifted = np.all((obs[1:, :-1] == obs[:-1, 1:]).reshape(steps - 1, -1), axis=1)
    frames: list[np.ndarray] = []
    refs = np.empty((steps, size), dtype=np.int32)

    def push_stack(stack: np.ndarray) -> np.ndarray:
        """Send a whole stack, repeated neighbours (a reset's padding) only once."""
        out = np.empty(size, dtype=np.int32)
        for j in range(size):
            if j > 0 and np.array_equal(stack[j], stack[j - 1]):
                out[j] = out[j - 1]
            else:
                frames.append(stack[j])
                out[j] = size + len(frames) - 1
        return out

    refs[0] = np.arange(size) if continues else push_stack(obs[0])
    for t in range(1, steps):
        if shifted[t - 1]:
            frames.append(obs[t, -1])
            refs[t, :-1] = refs[t - 1, 1:]
            refs[t, -1] = size + len(frames) - 1
        else:
            refs[t] = push_stack(obs[t])
    stacked = np.stack(frames) if frames else np.empty((0, *obs.shape[2:]), dtype=obs.dtype)
    return stacked, refs


# ---- a vector env's steps -> chunks -------------------------------------------------------------

NOT_STARTED = -2  # an env whose episode ended waits for its reset step


class VectorChunks:
    """Record a frame-stacking vector env step by step, then cut per-env episode chunks.

    The env follows Gymnasium's next-step autoreset: the step after an episode's end only
    starts the next episode (its padded first stack, no transition). Every other step shifts
    the stack by one frame, so each step stores just the newest frame of each env.

    Example:
        >>> recorder = VectorChunks(num_envs=1, frame_shape=(1,), stack=2)
        >>> recorder.start(np.zeros((1, 2, 1), np.uint8))  # the reset's stack, padded
        >>> for t in (1, 2):
        ...     obs = np.array([[[t - 1], [t]]], np.uint8)
        ...     recorder.record(obs, np.array([0]), np.array([1.0]), np.array([t == 2]),
        ...                     ended=np.array([t == 2]), starts=np.array([False]))
        >>> [chunk] = recorder.cut()
        >>> chunk["frames"][:, 0].tolist(), chunk["refs"].tolist(), chunk["ended"]
        ([0, 1, 2], [[2, 2], [2, 3], [3, 4]], True)
    """

    def __init__(self, num_envs: int, frame_shape: tuple[int, ...], stack: int) -> None:
        self.num_envs, self.frame_shape, self.stack = num_envs, tuple(frame_shape), stack
        self.steps = 0
        self._allocate(16)
        # Per env: row in `frames` of the first frame of an episode not yet sent (>= 0),
        # -1 when the episode continues one the memory knows, or NOT_STARTED.
        self.first_row = np.full(num_envs, NOT_STARTED, dtype=np.int64)
        self.episode_ids = [uuid.uuid4().hex for _ in range(num_envs)]

    def _allocate(self, rows: int) -> None:
        n, old = self.num_envs, getattr(self, "frames", None)
        self.frames = np.empty((rows + 1, n, *self.frame_shape), np.uint8)
        columns = {
            "actions": np.int64,
            "rewards": np.float32,
            "dones": bool,  # terminal for the targets: no bootstrap
            "ended": bool,  # the episode is over (terminated or truncated)
            "starts": bool,  # the step only began a new episode
        }
        previous = {name: getattr(self, name, None) for name in columns}
        for name, dtype in columns.items():
            setattr(self, name, np.empty((rows, n), dtype))
        if old is not None:  # grown mid-fragment: keep what is recorded
            self.frames[: self.steps + 1] = old[: self.steps + 1]
            for name, array in previous.items():
                getattr(self, name)[: self.steps] = array[: self.steps]  # type: ignore[index]

    def start(self, obs: np.ndarray) -> None:
        """Every env begins a new episode at `obs` (N, S, *frame) (after the env's reset)."""
        self.frames[0] = obs[:, -1]
        self.first_row[:] = 0
        self.steps = 0
        self.episode_ids = [uuid.uuid4().hex for _ in range(self.num_envs)]

    def record(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        *,
        ended: np.ndarray,
        starts: np.ndarray,
    ) -> None:
        """One vector step: its observations (N, S, *frame) and per-env outcomes (N,)."""
        t = self.steps
        if t == len(self.actions):
            self._allocate(2 * t)
        self.frames[t + 1] = obs[:, -1]
        self.actions[t], self.rewards[t], self.dones[t] = actions, rewards, dones
        self.ended[t], self.starts[t] = ended, starts
        self.steps = t + 1

    def cut(self) -> list[ReplayChunk]:
        """The chunks of every step since the last cut; unsent first frames carry over."""
        chunks = [chunk for env in range(self.num_envs) for chunk in self._env_chunks(env)]
        fresh = self.first_row >= 0
        self.frames[0, fresh] = self.frames[self.first_row[fresh], np.flatnonzero(fresh)]
        self.first_row[fresh] = 0
        self.steps = 0
        return chunks

    def _env_chunks(self, env: int) -> list[ReplayChunk]:
        chunks, first, begin = [], int(self.first_row[env]), 0
        for t in range(self.steps):
            if self.starts[t, env]:  # the reset step: the episode's first frame is row t + 1
                first = begin = t + 1
                self.episode_ids[env] = uuid.uuid4().hex
            elif self.ended[t, env]:
                chunks.append(self._chunk(env, first, begin, t + 1, ended=True))
                first, begin = NOT_STARTED, t + 1
        if first != NOT_STARTED and begin < self.steps:
            chunks.append(self._chunk(env, first, begin, self.steps, ended=False))
            first = -1  # the memory knows this episode now
        self.first_row[env] = first
        return chunks

    def _chunk(self, env: int, first: int, begin: int, end: int, *, ended: bool) -> ReplayChunk:
        """Steps [begin, end) of one episode; `first` >= 0 when it starts in this chunk."""
        steps, size = end - begin, self.stack
        offsets = np.arange(steps + 1)[:, None] + np.arange(size)[None, :]  # (T + 1, S)
        if first >= 0:  # frames: the first one, then one per step; the first stack is padded
            frames = self.frames[first : end + 1, env]
            refs = size + np.maximum(offsets - (size - 1), 0)
        else:  # frames: one per step after the S frames of the memory's carry
            frames = self.frames[begin + 1 : end + 1, env]
            refs = offsets
        return ReplayChunk(
            episode_id=self.episode_ids[env],
            continues=first < 0,
            stacked=True,
            frames=np.ascontiguousarray(frames),
            refs=refs.astype(np.int32),
            actions=self.actions[begin:end, env].copy(),
            rewards=self.rewards[begin:end, env].copy(),
            dones=self.dones[begin:end, env].copy(),
            ended=ended,
        )
