"""The epsilon-greedy Q-network module shared by DQN and deep SARSA.

- Vector observations: an MLP (the book's CartPole DQN: 4 -> 24 -> 24 -> 2, ReLU, He-uniform;
  its deep SARSA: 15 -> 30 -> 30 -> 5).
- Image observations `(S, H, W)` uint8: the Nature CNN of book 6.2, input scaled by 1/255:
  Conv 32x8x8/4 -> Conv 64x4x4/2 -> Conv 64x3x3/1 -> Dense 512 -> one output per action
  (ReLU everywhere, valid padding; 1.69M parameters for 84x84x4 and 3 actions).
- `dueling=True` (beyond the book; Wang et al. 2016): the last layer splits into a state value
  V(s) and advantages A(s, a), and Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) per sample.

`EpsilonGreedyQModule` acts greedily in `forward_inference` (evaluation) and epsilon-greedily in
`forward_exploration`, with `self.epsilon` set by the EnvRunner before each rollout. With
`acting_dtype="bfloat16"` (or "auto" on a CPU that multiplies bfloat16 natively) exploration
picks its greedy actions with a bfloat16 copy of the network: on such CPUs the Nature CNN's
forward pass takes half the float32 time, and the Q-values differ by about 0.4 %, so only
near-ties can pick another action. Training and `forward_inference` stay float32.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import QNetAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

Q_VALUES = "q_values"  # (B, A) online-network action values
ACTING_DTYPES = ("float32", "bfloat16", "auto")  # "auto": bfloat16 where the CPU has it natively


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere torch
    emulates it, slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def _init(module: nn.Module, scheme: str) -> None:
    """Initialize linear and conv layers: "he_uniform" (book 5.2 v1), "glorot_uniform" (Keras's
    default, book 6.2) or "torch" (PyTorch's default, left untouched). Biases start at 0."""
    if scheme == "torch":
        return
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            if scheme == "he_uniform":
                nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            elif scheme == "glorot_uniform":
                nn.init.xavier_uniform_(layer.weight)
            else:
                raise ValueError(f"init={scheme!r}: use 'he_uniform', 'glorot_uniform' or 'torch'")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class QNetwork(nn.Module):
    """Observation -> Q(s, .): Nature CNN or MLP torso, plain or dueling head."""

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        *,
        hidden_sizes: list[int],
        activation: str = "relu",
        dueling: bool = False,
        init: str = "he_uniform",
    ) -> None:
        super().__init__()
        act: type[nn.Module] = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        self.is_image = len(obs_shape) == 3
        if self.is_image:
            channels, height, width = obs_shape
            conv = nn.Sequential(
                nn.Conv2d(channels, 32, 8, stride=4),
                nn.ReLU(),
                nn.Conv2d(32, 64, 4, stride=2),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            with torch.no_grad():
                flat = conv(torch.zeros(1, channels, height, width)).shape[1]  # 3136 for 84x84
            layers: list[nn.Module] = [conv]
            width_in = flat
        else:
            layers = [nn.Flatten()]
            width_in = math.prod(obs_shape)
        for size in hidden_sizes:
            layers += [nn.Linear(width_in, size), act()]
            width_in = size
        self.torso = nn.Sequential(*layers)
        self.dueling = dueling
        self.advantage = nn.Linear(width_in, num_actions)  # the Q head when not dueling
        self.value = nn.Linear(width_in, 1) if dueling else None
        _init(self, init)
        # uint8 frames -> [0, 1], as the book feeds them (1 once folded into the first conv).
        self.pixel_scale = 1.0 / 255.0 if self.is_image else 1.0

    def fold_pixel_scale(self) -> None:
        """Scale the first convolution's weights by the pixel scale instead of every input:
        the same Q-values, one pass over the input fewer (for an inference copy)."""
        if self.pixel_scale != 1.0:
            with torch.no_grad():
                self.torso[0][0].weight.mul_(self.pixel_scale)
            self.pixel_scale = 1.0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.to(self.advantage.weight.dtype)  # float32, or bfloat16 for a bfloat16 copy
        if self.pixel_scale != 1.0:
            x = x * self.pixel_scale
        features = self.torso(x)  # (B, F)
        advantages = self.advantage(features)  # (B, A)
        if self.value is None:
            return advantages
        # Q = V + A - mean_a A, per sample (the book's A.1 variant averaged over the whole batch).
        return self.value(features) + advantages - advantages.mean(dim=1, keepdim=True)


class EpsilonGreedyQModule(TorchRLModule, QNetAPI):
    """A Q-network that acts greedily for inference and epsilon-greedily for exploration.

    `model_config` keys: hidden_sizes (list[int]; default [512] after the CNN for images,
    [24, 24] for vectors), activation ("relu" | "tanh"), dueling (bool), init ("he_uniform" |
    "glorot_uniform" | "torch"), epsilon (the exploration rate until an EnvRunner sets it),
    acting_dtype (one of `ACTING_DTYPES`: the precision of exploration's greedy actions).

    Example:
        >>> import gymnasium as gym
        >>> module = EpsilonGreedyQModule(
        ...     observation_space=gym.spaces.Box(-1, 1, (4,)), action_space=gym.spaces.Discrete(2),
        ...     model_config={"hidden_sizes": [24, 24]})
        >>> module.forward_inference({"obs": torch.zeros(3, 4)})["actions"].shape
        torch.Size([3])
    """

    def setup(self) -> None:
        config: dict[str, Any] = dict(self.model_config or {})  # type: ignore[arg-type]
        obs_shape = tuple(self.observation_space.shape)  # type: ignore[union-attr, arg-type]
        default_hidden = [512] if len(obs_shape) == 3 else [24, 24]
        self.q_net = QNetwork(
            obs_shape,
            int(self.action_space.n),  # type: ignore[union-attr]
            hidden_sizes=list(config.get("hidden_sizes", default_hidden)),
            activation=config.get("activation", "relu"),
            dueling=bool(config.get("dueling", False)),
            init=config.get("init", "he_uniform"),
        )
        self.epsilon = float(config.get("epsilon", 0.0))
        acting = config.get("acting_dtype", "float32")
        if acting not in ACTING_DTYPES:
            raise ValueError(f"acting_dtype={acting!r}: use one of {ACTING_DTYPES}")
        self.acting_dtype = acting
        # The bfloat16 copy, kept outside the module's parameters (and its state dict), and
        # whether the weights changed since it was copied.
        self._acting: dict[str, Any] = {"net": None, "stale": True}

    def set_state(self, state: Any) -> None:
        """Load weights (e.g. synced from the learner); the acting copy is refreshed lazily."""
        super().set_state(state)
        self._acting["stale"] = True

    def _acting_net(self, device: torch.device) -> nn.Module:
        """The network exploration acts with: `q_net` or its refreshed bfloat16 copy."""
        wanted = self.acting_dtype
        if wanted == "auto":
            wanted = "bfloat16" if device.type == "cpu" and native_bfloat16() else "float32"
        if wanted == "float32":
            return self.q_net
        net: QNetwork | None = self._acting["net"]
        if net is None:
            net = self._acting["net"] = copy.deepcopy(self.q_net).to(torch.bfloat16)
        elif self._acting["stale"]:
            net.load_state_dict(self.q_net.state_dict())  # in place, cast to bfloat16
            net.pixel_scale = self.q_net.pixel_scale
        if self._acting["stale"]:
            net.fold_pixel_scale()  # uint8 -> bfloat16 is the only pass over the input
            self._acting["stale"] = False
        return net

    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {Q_VALUES: self.q_net(batch[Columns.OBS])}

    @torch.no_grad()
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        q_values = self.q_net(batch[Columns.OBS])
        return {Columns.ACTIONS: q_values.argmax(dim=1)}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        actions = self.explore_actions(batch[Columns.OBS])
        return {Columns.ACTIONS: torch.from_numpy(actions)}

    @torch.no_grad()
    def explore_actions(self, obs: torch.Tensor) -> np.ndarray:
        """Epsilon-greedy actions (B,) int64 for observations (B, ...), from numpy's RNG.

        `forward_exploration` without RLlib's per-call train/eval switching, for EnvRunners
        that step whole vectors of envs themselves.
        """
        size = obs.shape[0]
        explore = np.random.random(size) < self.epsilon
        num_actions = int(self.action_space.n)  # type: ignore[union-attr]
        actions = np.random.randint(num_actions, size=size).astype(np.int64)
        greedy = np.flatnonzero(~explore)
        if len(greedy):  # the network sees only the rows that act greedily (none in the warm-up)
            rows = torch.from_numpy(greedy).to(obs.device)  # (index_select: 30x a bool mask)
            q_values = self._acting_net(obs.device)(obs.index_select(0, rows))
            actions[greedy] = q_values.argmax(dim=1).cpu().numpy()
        return actions

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.compute_q_values(batch)
