"""REINFORCE's policy network (book section 4.2), with an optional learned baseline.

Policy: MLP 15 -> 24 (ReLU) -> 24 (ReLU) -> 5 logits (softmax outside), the book's network on
the moving-obstacles grid. With `model_config["baseline"]` a separate value MLP of the same
shape estimates V(s), which the learner subtracts from the returns (not in the book).

Example:
    >>> import gymnasium as gym
    >>> from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    >>> module = RLModuleSpec(
    ...     module_class=ReinforceTorchRLModule,
    ...     observation_space=gym.spaces.Box(-4, 4, (15,)),
    ...     action_space=gym.spaces.Discrete(5),
    ...     model_config={"hiddens": [24, 24], "baseline": False},
    ... ).build()
    >>> module.forward_inference({"obs": torch.zeros(2, 15)})["action_dist_inputs"].shape
    torch.Size([2, 5])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from algorithms.actor_critic_rl_module import mlp


class ReinforceTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """A softmax policy over `Discrete` actions and, optionally, a baseline V(s).

    `model_config`: `hiddens` (default [24, 24]), `baseline` (default False).
    """

    def setup(self) -> None:
        obs_dim = int(np.prod(self.observation_space.shape))
        hiddens = list(self.model_config.get("hiddens", [24, 24]))
        self.policy = mlp([obs_dim, *hiddens, int(self.action_space.n)], "relu")
        self.has_baseline = bool(self.model_config.get("baseline", False))
        self.baseline = mlp([obs_dim, *hiddens, 1], "relu") if self.has_baseline else None

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS].float().flatten(start_dim=1)
        return {Columns.ACTION_DIST_INPUTS: self.policy(obs)}  # (B, A) logits

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        out = self._forward(batch)
        if self.has_baseline:
            out[Columns.VF_PREDS] = self.compute_values(batch)
        return out

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """The baseline V(s), shape (B,); zeros when the module has no baseline."""
        obs = batch[Columns.OBS].float().flatten(start_dim=1)
        if self.baseline is None:
            return torch.zeros(obs.shape[0], device=obs.device)
        return self.baseline(obs).squeeze(-1)

    def get_train_action_dist_cls(self) -> type:
        return TorchCategorical

    def get_exploration_action_dist_cls(self) -> type:
        return TorchCategorical

    def get_inference_action_dist_cls(self) -> type:
        return TorchCategorical
