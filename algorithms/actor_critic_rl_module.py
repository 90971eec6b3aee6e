"""The actor-critic network of the book's actor-critic and A3C (book sections 5.3, 5.4, 6.3).

One module, three bodies picked by the observation space:
- vectors (CartPole, the moving-obstacles grid): separate actor and critic MLPs with no shared
  layers, as the book's v2 actor-critic (actor 24 tanh, critic 24-24 tanh);
- uint8 (4, 84, 84) frames (Breakout): the book's A3C network (v1), a shared trunk
  Conv 16 8x8/4 -> Conv 32 4x4/2 -> Dense 256 (ReLU) with a policy and a value head;

and two policy heads picked by the action space: categorical logits for `Discrete`, or a
Gaussian for a 1-D `Box` with mean mu (linear) and sigma = sigmoid(x) + 1e-5 (book 5.4),
emitted as RLlib's `TorchDiagGaussian` inputs [mu, log sigma].

Example:
    >>> import gymnasium as gym
    >>> from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    >>> module = RLModuleSpec(
    ...     module_class=ActorCriticTorchRLModule,
    ...     observation_space=gym.spaces.Box(-1, 1, (4,)),
    ...     action_space=gym.spaces.Discrete(2),
    ...     model_config={},
    ... ).build()
    >>> module.forward_inference({"obs": torch.zeros(3, 4)})["action_dist_inputs"].shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDiagGaussian,
)
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(sizes: list[int], activation: str, out_init_scale: float | None = None) -> nn.Sequential:
    """Linear layers of `sizes` with `activation` between them and a linear output.

    `out_init_scale` draws the output layer uniformly in [-scale, scale] (book v2: 1e-3).
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    if out_init_scale is not None:
        last = layers[-1]
        assert isinstance(last, nn.Linear)
        nn.init.uniform_(last.weight, -out_init_scale, out_init_scale)
        nn.init.uniform_(last.bias, -out_init_scale, out_init_scale)
    return nn.Sequential(*layers)


def book_a3c_trunk(channels: int) -> nn.Sequential:
    """The book's A3C trunk (v1): (C, 84, 84) uint8 -> 256 features."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, kernel_size=8, stride=4),  # (16, 20, 20)
        nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=4, stride=2),  # (32, 9, 9)
        nn.ReLU(),
        nn.Flatten(),  # 2592
        nn.Linear(32 * 9 * 9, 256),
        nn.ReLU(),
    )


class ActorCriticTorchRLModule(TorchRLModule, ValueFunctionAPI):
    """Policy pi(a|s) and state value V(s), for `Discrete` or 1-D `Box` actions.

    `model_config` keys (all optional): `actor_hiddens` (default [24]), `critic_hiddens`
    (default [24, 24]), `activation` ("tanh" or "relu", default "tanh"), `out_init_scale`
    (default 1e-3; None for PyTorch's default init).
    """

    def setup(self) -> None:
        action_space, shape = self.action_space, tuple(self.observation_space.shape or ())  # type: ignore[union-attr]
        config: dict[str, Any] = dict(self.model_config or {})  # type: ignore[arg-type]
        self.is_continuous = isinstance(action_space, gym.spaces.Box)
        if isinstance(action_space, gym.spaces.Box):
            num_outputs = 2 * int(np.prod(action_space.shape))  # mu and pre-sigma per dim
        else:
            assert isinstance(action_space, gym.spaces.Discrete)
            num_outputs = int(action_space.n)
        scale = config.get("out_init_scale", 1e-3)
        self.is_image = len(shape) == 3
        if self.is_image:  # the book's A3C: a shared trunk, two linear heads
            self.trunk: nn.Module | None = book_a3c_trunk(shape[0])
            self.actor: nn.Module = nn.Linear(256, num_outputs)
            self.critic: nn.Module = nn.Linear(256, 1)
        else:  # the book's actor-critic: two separate MLPs
            activation = config.get("activation", "tanh")
            obs_dim = int(np.prod(shape))
            actor_sizes = [obs_dim, *config.get("actor_hiddens", [24]), num_outputs]
            critic_sizes = [obs_dim, *config.get("critic_hiddens", [24, 24]), 1]
            self.trunk = None
            self.actor = mlp(actor_sizes, activation, scale)
            self.critic = mlp(critic_sizes, activation, scale)

    # ---- forward passes ----------------------------------------------------------------------

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        if self.trunk is None:
            return obs.float().flatten(start_dim=1)
        return self.trunk(obs.float() / 255.0)  # uint8 frames -> [0, 1]

    def _dist_inputs(self, features: torch.Tensor) -> torch.Tensor:
        out = self.actor(features)
        if not self.is_continuous:
            return out  # (B, A) logits
        mu, pre_sigma = out.chunk(2, dim=-1)
        sigma = torch.sigmoid(pre_sigma) + 1e-5  # book 5.4
        return torch.cat([mu, torch.log(sigma)], dim=-1)  # (B, 2D) = [mu, log sigma]

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features = self._features(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(features)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features = self._features(batch[Columns.OBS])
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(features),
            Columns.VF_PREDS: self._value(features),
        }

    def _value(self, features: torch.Tensor) -> torch.Tensor:
        return self.critic(features).squeeze(-1)  # (B,)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """V(s) for every observation in `batch`, shape (B,)."""
        return self._value(self._features(batch[Columns.OBS]))

    # ---- distributions -----------------------------------------------------------------------

    def get_train_action_dist_cls(self) -> type:
        return TorchDiagGaussian if self.is_continuous else TorchCategorical

    def get_exploration_action_dist_cls(self) -> type:
        return self.get_train_action_dist_cls()

    def get_inference_action_dist_cls(self) -> type:
        return self.get_train_action_dist_cls()
