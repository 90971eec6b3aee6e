"""The DQN module (book sections 5.2 and 6.2): the epsilon-greedy Q-network plus a target network.

The Q-network (MLP for vectors, the Nature CNN for Atari frames, optional dueling head) is
`algorithms/common/q_network.py`'s, shared with deep SARSA. DQN adds the target network of
Mnih et al. 2015: built by the learner (`TargetNetworkAPI`), copied from the online net by the
algorithm's schedule, and never sent to the EnvRunners (`InferenceOnlyAPI`).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, TargetNetworkAPI
from torch import nn

from algorithms.common.q_network import Q_VALUES, EpsilonGreedyQModule

__all__ = ["Q_VALUES", "TARGET_Q_VALUES", "DQNTorchRLModule"]

TARGET_Q_VALUES = "target_q_values"  # (B, A) target-network action values


class DQNTorchRLModule(EpsilonGreedyQModule, TargetNetworkAPI, InferenceOnlyAPI):
    """Q-network + target network; greedy for inference, epsilon-greedy for exploration.

    Example:
        >>> import gymnasium as gym, torch
        >>> module = DQNTorchRLModule(
        ...     observation_space=gym.spaces.Box(-1, 1, (4,)), action_space=gym.spaces.Discrete(2),
        ...     model_config={"hidden_sizes": [24, 24]})
        >>> module.make_target_networks()
        >>> module.forward_target({"obs": torch.zeros(3, 4)})["target_q_values"].shape
        torch.Size([3, 2])
    """

    def make_target_networks(self) -> None:
        self.target_q_net = make_target_network(self.q_net)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.q_net, self.target_q_net)]

    def get_non_inference_attributes(self) -> list[str]:
        return ["target_q_net"]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {TARGET_Q_VALUES: self.target_q_net(batch[Columns.OBS])}
