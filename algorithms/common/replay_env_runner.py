"""The EnvRunner of the replay-based algorithms: it samples and pushes straight into the replay.

Two ways to sample, chosen by the env the EnvRunner holds:

- any env: RLlib's own `sample()` (connectors, `SingleAgentEpisode`s), its episode chunks
  compacted by `episode_chunk`;
- `envs.atari_vector.AtariVector` (the Atari ids with `gym_env_vectorize_mode=
  "vector_entry_point"`): a loop that asks the module for a whole vector's epsilon-greedy
  actions at once (`explore_actions`, what `forward_exploration` runs) and records every step
  straight into arrays (`VectorChunks`). It reports the same metrics (RLlib's own helpers log
  them) but skips RLlib's per-env-step episode bookkeeping, which on a 2-core machine costs as
  much as the C++ emulator saves.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from algorithms.common.replay_chunks import VectorChunks, episode_chunk, is_frame_stack
from algorithms.common.replay_shards import Replay
from envs.atari_vector import AtariVector


class _VectorEpisodes:
    """What the vector loop carries from one call to the next: observations and episode stats."""

    def __init__(self, env: AtariVector, obs: np.ndarray) -> None:
        self.env = env
        self.obs = obs
        n = env.num_envs
        self.recorder = VectorChunks(n, obs.shape[2:], obs.shape[1])
        self.recorder.start(obs)
        self.returns = np.zeros(n, dtype=np.float64)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.started_at = np.full(n, time.time())
        self.restarting = np.zeros(n, dtype=bool)  # the next step only resets these envs


class ReplayEnvRunner(SingleAgentEnvRunner):
    """RLlib's single-agent EnvRunner plus one call: sample and push straight to the memory."""

    _vector: _VectorEpisodes | None = None

    def sample_to_replay(
        self,
        replay: Replay,
        *,
        epsilon: float,
        life_loss_terminal: bool = False,
        num_timesteps: int | None = None,
    ) -> tuple[dict[str, Any], dict[int, int]]:
        """Act epsilon-greedily for `num_timesteps` (default: one rollout fragment per env).

        Returns:
            This EnvRunner's metrics (for the driver to aggregate) and the shards' sizes.
        """
        self.module.epsilon = epsilon  # type: ignore[union-attr]
        vector = self.env.unwrapped if self.env is not None else None
        if isinstance(vector, AtariVector):
            chunks = self._sample_vector(vector, life_loss_terminal, num_timesteps)
        else:
            episodes = self.sample(num_timesteps=num_timesteps, explore=True)  # type: ignore[arg-type]
            stacked = is_frame_stack(self.env.single_observation_space)  # type: ignore[union-attr]
            chunks = [
                episode_chunk(e, stacked=stacked, life_loss_terminal=life_loss_terminal)
                for e in episodes
            ]
        sizes = replay.add(chunks) if chunks else {}
        return self.get_metrics(), sizes

    # ---- the vector loop ---------------------------------------------------------------------

    def _sample_vector(
        self, env: AtariVector, life_loss_terminal: bool, num_timesteps: int | None
    ) -> list[Any]:
        """Step `env` for about `num_timesteps` env steps (default: one fragment per env)."""
        if self._vector is None or self._vector.env is not env:  # first call, or a new env
            obs, _ = self._try_env_reset(seed=self._seed)
            self._vector = _VectorEpisodes(env, obs)
        state, fragment = self._vector, self.config.get_rollout_fragment_length(self.worker_index)
        wanted = num_timesteps if num_timesteps is not None else fragment * env.num_envs
        steps = episodes = 0
        while steps < wanted:
            actions = self._explore(state.obs)
            obs, rewards, terminated, truncated, info = env.step(actions)
            starts = state.restarting  # these envs only began their next episode
            ended = terminated | truncated
            dones = terminated | (info["life_lost"] & life_loss_terminal)  # no bootstrap
            state.recorder.record(obs, actions, rewards, dones, ended=ended, starts=starts)
            stepped = ~starts
            state.returns[stepped] += rewards[stepped]
            state.lengths[stepped] += 1
            state.started_at[starts] = time.time()
            for i in np.flatnonzero(ended):
                duration = time.time() - state.started_at[i]
                self._log_episode_metrics(int(state.lengths[i]), state.returns[i], duration)
            state.returns[ended], state.lengths[ended] = 0.0, 0
            state.obs, state.restarting = obs, ended
            steps += int(stepped.sum())
            episodes += int(ended.sum())
        self._increase_sampled_metrics(steps, episodes)
        return state.recorder.cut()

    def _explore(self, obs: np.ndarray) -> np.ndarray:
        """The module's epsilon-greedy actions for a whole vector of observations."""
        return self.module.explore_actions(torch.from_numpy(obs))  # type: ignore[union-attr]
