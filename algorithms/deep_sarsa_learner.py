"""The deep SARSA update (book section 4.1; Rummery & Niranjan 1994 with a neural Q-function).

    y = r                               if s' is terminal
    y = r + gamma * Q(s', a')           otherwise, a' = the action the agent actually took in s'
    loss = (y - Q(s, a))^2              one transition at a time, in time order

The target is computed without gradient (semi-gradient SARSA); the book's v2 code lets the
gradient flow through Q(s', a') as well, and its a' is a fresh epsilon-greedy draw rather than the
action taken next (book section 8, item 3). Both are corrected here, as the issue asks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.apis import QNetAPI

from algorithms.common.q_network import Q_VALUES, EpsilonGreedyQModule
from algorithms.common.restored_lr import ConfiguredLearningRate

NEXT_ACTIONS = "next_actions"  # a': the action taken in s'
NOT_TERMINAL = "not_terminal"  # 1 - done
SARSA_LOSS = "sarsa_loss"
TD_ERROR_ABS_MEAN = "td_error_abs_mean"


def sarsa_loss(
    q_values: torch.Tensor, q_next: torch.Tensor, batch: dict[str, Any], *, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The deep SARSA loss and TD errors of a batch.

    Args:
        q_values: Q(s, .) of the online network, (B, A), with gradient.
        q_next: Q(s', .), (B, A), computed without gradient.
        batch: actions a (B,), rewards r (B,), next_actions a' (B,), not_terminal (B,).
        gamma: Discount factor.

    Returns:
        mean_i (y_i - Q(s_i, a_i))^2 and the detached TD errors y - Q(s, a), (B,).
    """
    q_taken = q_values.gather(1, batch[Columns.ACTIONS].long()[:, None]).squeeze(1)  # (B,)
    q_next_taken = q_next.gather(1, batch[NEXT_ACTIONS].long()[:, None]).squeeze(1)  # (B,)
    target = batch[Columns.REWARDS] + gamma * batch[NOT_TERMINAL] * q_next_taken.detach()
    td_error = target - q_taken
    return td_error.pow(2).mean(), td_error.detach()


class DeepSarsaTorchLearner(ConfiguredLearningRate, TorchLearner):
    """One gradient step per transition (s, a, r, s', a'), online and in the order played."""

    @classmethod
    def rl_module_required_apis(cls) -> list[type]:
        return [QNetAPI]

    def build(self) -> None:
        torch.set_num_threads(1)  # a 15-30-30-5 MLP on one sample: more threads only wait
        super().build()
        # The last step of an unfinished episode chunk waits here for its a' (next chunk).
        self._waiting: dict[str, tuple[np.ndarray, int, float]] = {}

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """Squared SARSA TD error of the taken actions (see the module docstring)."""
        module: EpsilonGreedyQModule = self.module[module_id].unwrapped()  # type: ignore[assignment]
        with torch.no_grad():  # no gradient through the target
            q_next = module.compute_q_values({Columns.OBS: batch[Columns.NEXT_OBS]})[Q_VALUES]
        loss, td_error = sarsa_loss(fwd_out[Q_VALUES], q_next, batch, gamma=config.gamma)
        self.metrics.log_value((module_id, SARSA_LOSS), loss.detach(), window=1)
        self.metrics.log_value((module_id, TD_ERROR_ABS_MEAN), td_error.abs().mean())
        return loss

    def update(  # type: ignore[override]
        self, *, training_data: Any = None, timesteps: Any = None, **kwargs: Any
    ) -> Any:
        """Update on every transition of the sampled episode chunks, in the order played."""
        self.before_gradient_based_update(timesteps=timesteps or {})
        for episode in training_data.episodes:
            for transition in self._transitions(episode):
                self._update({DEFAULT_MODULE_ID: transition})
        self.after_gradient_based_update(timesteps=timesteps or {})
        return self.metrics.reduce()

    def _transitions(self, episode: Any) -> list[dict[str, torch.Tensor]]:
        """(s, a, r, s', a', not_terminal) of one chunk, plus the one left by its last chunk."""
        obs = np.asarray(episode.get_observations(), dtype=np.float32)
        actions = np.asarray(episode.get_actions(), dtype=np.int64)
        rewards = np.asarray(episode.get_rewards(), dtype=np.float32)
        steps: list[tuple[np.ndarray, int, float, np.ndarray, int, float]] = []
        waiting = self._waiting.pop(str(episode.id_), None)
        if waiting is not None and episode.t_started > 0:
            steps.append((*waiting, obs[0], int(actions[0]), 1.0))
        for t in range(len(actions)):
            if t + 1 < len(actions):
                steps.append(
                    (
                        obs[t],
                        int(actions[t]),
                        float(rewards[t]),
                        obs[t + 1],
                        int(actions[t + 1]),
                        1.0,
                    )
                )
            elif episode.is_terminated:
                steps.append((obs[t], int(actions[t]), float(rewards[t]), obs[t + 1], 0, 0.0))
            elif not episode.is_truncated:  # a' comes with the episode's next chunk
                self._waiting[str(episode.id_)] = (obs[t], int(actions[t]), float(rewards[t]))
            # truncated: the last transition has no a' and is not used (as in tabular SARSA)
        return [self._tensors(*step) for step in steps]

    def _tensors(
        self, s: np.ndarray, a: int, r: float, s_next: np.ndarray, a_next: int, alive: float
    ) -> dict[str, torch.Tensor]:
        def tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.asarray([x]), dtype=dtype, device=self._device)

        return {
            Columns.OBS: tensor(s, torch.float32),
            Columns.ACTIONS: tensor(a, torch.int64),
            Columns.REWARDS: tensor(r, torch.float32),
            Columns.NEXT_OBS: tensor(s_next, torch.float32),
            NEXT_ACTIONS: tensor(a_next, torch.int64),
            NOT_TERMINAL: tensor(alive, torch.float32),
        }
