"""Returns and advantages shared by REINFORCE, actor-critic and A3C (book sections 4.2, 5.3, 6.3).

Two layers:
- pure numpy functions on one episode (chunk): `discounted_returns`, `standardise`, `gae`;
- two learner-connector pieces that apply them per sampled episode and add the results to the
  train batch: `AddNormalisedReturns` (REINFORCE) and `AddAdvantages` (actor-critic, A3C).

`gae` covers the book's three advantage estimates with one formula (Schulman et al. 2016):
lambda = 0 is the one-step TD advantage r + gamma V(s') - V(s) of the book's actor-critic, and
lambda = 1 over a rollout of n steps is A3C's n-step return bootstrapped from V(s_n) - V(s).

Example:
    >>> discounted_returns(np.array([0.0, 0.0, 1.0]), gamma=0.5).tolist()
    [0.25, 0.5, 1.0]
    >>> gae(np.array([1.0]), np.array([0.5]), bootstrap_value=2.0, gamma=0.9, lambda_=0.0)
    array([2.3])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

ADVANTAGES = Postprocessing.ADVANTAGES
VALUE_TARGETS = Postprocessing.VALUE_TARGETS


def discounted_returns(
    rewards: np.ndarray, gamma: float, bootstrap_value: float = 0.0
) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1}, computed backwards, with G_T = `bootstrap_value`."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = float(bootstrap_value)
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def standardise(values: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(x - mean) / std within one array; an array of equal values becomes all zeros."""
    return (values - values.mean()) / (values.std() + eps)


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap_value: float,
    gamma: float,
    lambda_: float,
) -> np.ndarray:
    """Generalised advantage estimates of one episode chunk.

    Args:
        rewards: r_0 .. r_{T-1}, shape (T,).
        values: V(s_0) .. V(s_{T-1}), shape (T,).
        bootstrap_value: V(s_T) of the state after the last step; 0 if s_T is terminal.
        gamma: Discount factor.
        lambda_: GAE's lambda: 0 gives one-step TD errors, 1 gives n-step returns minus V(s_t).

    Returns:
        A_t, shape (T,). The value targets are A_t + V(s_t).
    """
    next_values = np.append(values[1:], bootstrap_value)
    deltas = rewards + gamma * next_values - values  # (T,) one-step TD errors
    advantages = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + gamma * lambda_ * running
        advantages[t] = running
    return advantages


# ---- learner-connector pieces ----------------------------------------------------------------


def _set_column(batch: dict[str, Any], column: str, per_episode: list[np.ndarray]) -> None:
    """Write per-episode arrays into every module's flat batch, in the episodes' order.

    RLlib's default learner pipeline concatenates the episodes' timesteps in the order of the
    episode list (its own GAE piece relies on the same), so the concatenation lines up.
    """
    for module_batch in batch.values():
        reference = module_batch[Columns.REWARDS]
        values = np.concatenate(per_episode).astype(np.float32)
        module_batch[column] = torch.as_tensor(values, device=reference.device)


def _episode_rewards(episode: Any) -> np.ndarray:
    return np.asarray(episode.get_rewards(), dtype=np.float64)


class AddNormalisedReturns(ConnectorV2):
    """Adds `Columns.RETURNS_TO_GO`: each episode's discounted returns, standardised within it.

    REINFORCE's learning signal (book section 4.2). Episodes must be complete.
    """

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        gamma: float,
        normalise: bool = True,
    ) -> None:
        super().__init__(input_observation_space, input_action_space)
        self.gamma = gamma
        self.normalise = normalise

    def __call__(
        self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any
    ) -> Any:
        per_episode = []
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            returns = discounted_returns(_episode_rewards(episode), self.gamma)
            per_episode.append(standardise(returns) if self.normalise else returns)
        _set_column(batch, Columns.RETURNS_TO_GO, per_episode)
        return batch


class AddAdvantages(ConnectorV2):
    """Adds GAE advantages and value targets, bootstrapping each chunk from V(s_T).

    For every episode chunk, V is computed (without gradient) on all its T + 1 observations;
    the value after the last step is 0 if the episode terminated there, else V(s_T), the
    state *after* the last action (the book's A3C used the state before it, an off-by-one).
    Truncation by a time limit is therefore bootstrapped, not treated as failure.
    """

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        gamma: float,
        lambda_: float,
    ) -> None:
        super().__init__(input_observation_space, input_action_space)
        self.gamma = gamma
        self.lambda_ = lambda_

    def __call__(
        self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any
    ) -> Any:
        module = next(iter(rl_module.values())) if hasattr(rl_module, "values") else rl_module
        chunks = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        advantages, targets = episode_advantages(module, chunks, self.gamma, self.lambda_)
        _set_column(batch, ADVANTAGES, advantages)
        _set_column(batch, VALUE_TARGETS, targets)
        return batch


def episode_advantages(
    module: Any, episodes: list[Any], gamma: float, lambda_: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(advantages, value targets) per episode chunk, with V from `module.compute_values`."""
    observations = [np.asarray(episode.get_observations()) for episode in episodes]
    lengths = [len(obs) for obs in observations]  # T + 1 per chunk
    device = next(module.parameters()).device
    with torch.no_grad():
        all_obs = torch.as_tensor(np.concatenate(observations), device=device)
        all_values = module.compute_values({Columns.OBS: all_obs}).cpu().numpy().astype(np.float64)
    advantages, targets = [], []
    start = 0
    for episode, length in zip(episodes, lengths, strict=True):
        values = all_values[start : start + length]  # (T + 1,)
        start += length
        bootstrap = 0.0 if episode.is_terminated else float(values[-1])
        adv = gae(_episode_rewards(episode), values[:-1], bootstrap, gamma, lambda_)
        advantages.append(adv)
        targets.append(adv + values[:-1])
    return advantages, targets
