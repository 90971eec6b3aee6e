"""The DQN loss (book sections 5.2 and 6.2; Mnih et al. 2015) and the learner's replay loop.

    y = r + gamma^n * (1 - done) * max_a' Q_target(s', a')             (n = 1 in the book)
    loss = mean_i w_i * huber(y_i - Q(s_i, a_i))                       (MSE for book 5.2)

Beyond the book: double Q (van Hasselt et al. 2016) picks a' with the online net and evaluates
it with the target net; `w_i` are prioritized-replay importance weights (1 when uniform); the
n-step return and its discount `gamma^k (1 - done)` come precomputed from the replay memory.

The learner pulls its own minibatches from the replay actor(s), so sample data never passes
through the driver: `learn_from_replay` runs `num_updates` gradient steps, prefetching the next
minibatch while the current one trains.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from torch.nn import functional

from algorithms.common.gradients import clean_and_clip
from algorithms.common.replay import Replay
from algorithms.dqn_rl_module import Q_VALUES, TARGET_Q_VALUES, DQNTorchRLModule

# Learner metric names (under learners/default_policy/).
QF_LOSS = "qf_loss"
Q_MEAN = "q_mean"
TD_ERROR_ABS_MEAN = "td_error_abs_mean"
UPDATES = "num_gradient_updates"
UPDATES_PER_SECOND = "gradient_updates_per_second"
TARGET_UPDATES = "num_target_updates_lifetime"
GRADIENT_NORM = "gradient_global_norm"  # before clipping
DISCOUNTS = "discounts"  # gamma^k (1 - done) of each n-step transition
WEIGHTS = "weights"  # importance-sampling weights
MINIBATCHES_PER_CALL = 8  # minibatches fetched from the replay actor per round trip


def dqn_loss(
    q_values: torch.Tensor,
    q_next_target: torch.Tensor,
    batch: dict[str, Any],
    *,
    kind: str = "huber",
    q_next_online: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The DQN loss and TD errors of a minibatch.

    Args:
        q_values: Q(s, .) of the online network, (B, A), with gradient.
        q_next_target: Q_target(s', .), (B, A).
        batch: actions a (B,), rewards r (B,) (n-step returns), discounts (B,) = gamma^n or 0,
            weights (B,) importance weights.
        kind: "huber" (book 6.2) or "mse" (book 5.2).
        q_next_online: Q(s', .) of the online network for double Q, else None (plain max).

    Returns:
        mean_i w_i * loss(y_i - Q(s_i, a_i)) and the detached TD errors y - Q(s, a), (B,).
    """
    actions = batch[Columns.ACTIONS].long()  # (B,)
    q_taken = q_values.gather(1, actions[:, None]).squeeze(1)  # Q(s, a): (B,)
    if q_next_online is not None:  # double Q: a' = argmax_a Q(s', a), valued by the target net
        best = q_next_online.argmax(dim=1, keepdim=True)  # (B, 1)
        q_next = q_next_target.gather(1, best).squeeze(1)  # (B,)
    else:  # max_a' Q_target(s', a')
        q_next = q_next_target.max(dim=1).values  # (B,)
    target = (batch[Columns.REWARDS] + batch[DISCOUNTS] * q_next).detach()  # y: (B,)
    td_error = target - q_taken  # (B,)
    if kind == "huber":  # 0.5 d^2 for |d| <= 1, |d| - 0.5 beyond (Keras's Huber, book 6.2)
        per_item = functional.huber_loss(q_taken, target, reduction="none", delta=1.0)
    else:  # d^2 (Keras's MSE on the taken action, book 5.2 v2)
        per_item = td_error.pow(2)
    return (batch[WEIGHTS] * per_item).mean(), td_error.detach()


class DQNTorchLearner(TorchLearner):
    """Trains `DQNTorchRLModule`s on minibatches it draws from the replay memory."""

    @classmethod
    def rl_module_required_apis(cls) -> list[type]:
        return [QNetAPI, TargetNetworkAPI]

    def build(self) -> None:
        # One intra-op thread per learner CPU: more threads than cores only spin and wait.
        cpus = self.config.num_cpus_per_learner
        torch.set_num_threads(max(1, int(cpus)) if isinstance(cpus, int | float) else 1)
        super().build()
        for module_id in self.module.keys():
            self._q_module(module_id).make_target_networks()
        self._td_errors: dict[str, torch.Tensor] = {}

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """Adam (book 5.2 and 6.2 v2) or RMSprop with rho 0.9 and epsilon 0.01 (6.2 v1).

        Both step all parameters at once: Adam in one fused kernel (a tenth of torch's default
        per-tensor loop on the CPU), RMSprop, which has no fused kernel, with foreach.
        """
        params = self.get_parameters(self.module[module_id])
        if config.optimizer_type == "rmsprop":
            optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
                params, lr=config.lr, alpha=0.9, eps=config.optimizer_epsilon, foreach=True
            )
        else:
            optimizer = torch.optim.Adam(
                params, lr=config.lr, eps=config.optimizer_epsilon, fused=True
            )
        self.register_optimizer(
            module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr
        )

    def postprocess_gradients(self, gradients_dict: dict[Any, Any]) -> dict[Any, Any]:
        """Zero nan/inf entries and clip to the global norm `grad_clip`, with one norm."""
        gradients, norm = clean_and_clip(gradients_dict, self.config.grad_clip)
        self.metrics.log_value((ALL_MODULES, GRADIENT_NORM), norm, window=1)
        return gradients

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """The book's TD loss on one minibatch (see the module docstring for the equation)."""
        module = self._q_module(module_id)
        with torch.no_grad():  # no gradient through the target
            next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
            q_next_target = module.forward_target(next_batch)[TARGET_Q_VALUES]  # (B, A)
            q_next_online = (
                module.compute_q_values(next_batch)[Q_VALUES] if config.double_q else None
            )
        loss, td_error = dqn_loss(
            fwd_out[Q_VALUES], q_next_target, batch, kind=config.loss, q_next_online=q_next_online
        )
        self._td_errors[module_id] = td_error
        q_taken = fwd_out[Q_VALUES].detach().gather(1, batch[Columns.ACTIONS].long()[:, None])
        self.metrics.log_value((module_id, QF_LOSS), loss.detach(), window=1)
        self.metrics.log_value((module_id, Q_MEAN), q_taken.mean(), window=1)
        self.metrics.log_value((module_id, TD_ERROR_ABS_MEAN), td_error.abs().mean(), window=1)
        return loss

    def _q_module(self, module_id: str) -> DQNTorchRLModule:
        module: DQNTorchRLModule = self.module[module_id].unwrapped()  # type: ignore[assignment]
        return module

    # ---- the replay loop ---------------------------------------------------------------------

    def learn_from_replay(
        self,
        replay: Replay,
        *,
        num_updates: int,
        timesteps: dict[str, Any],
        module_id: str = DEFAULT_MODULE_ID,
    ) -> dict[str, Any]:
        """Run `num_updates` gradient steps, each on a fresh minibatch from `replay`.

        Returns:
            The reduced learner metrics (losses, Q mean, updates and updates/s).
        """
        config = self.config.get_config_for_module(module_id)
        batch_size = config.train_batch_size_per_learner
        beta = config.prioritized_replay_beta
        self.before_gradient_based_update(timesteps=timesteps)
        start = time.perf_counter()
        # Minibatches come in chunks, one actor round trip each, and the next chunk is fetched
        # while this one trains. Prioritized replay draws one at a time, so that each draw
        # sees the priorities of the update before it.
        chunk = 1 if replay.prioritized else MINIBATCHES_PER_CALL
        remaining = num_updates
        pending = replay.sample_async(batch_size, beta, count=min(chunk, remaining))
        while remaining > 0:
            minibatches = replay.collect(pending)
            remaining -= len(minibatches)
            if remaining > 0:
                pending = replay.sample_async(batch_size, beta, count=min(chunk, remaining))
            for sample in minibatches:
                self._update({module_id: self._to_tensors(sample)})
                if replay.prioritized:
                    replay.update_priorities(sample, self._td_errors[module_id].cpu().numpy())
        elapsed = time.perf_counter() - start
        self.after_gradient_based_update(timesteps=timesteps)
        self.metrics.log_value((module_id, UPDATES), num_updates, reduce="sum")
        self.metrics.log_value((module_id, UPDATES_PER_SECOND), num_updates / max(elapsed, 1e-9))
        return self.metrics.reduce()

    def _to_tensors(self, sample: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x)).to(self._device, non_blocking=True)

        return {
            Columns.OBS: tensor(sample["obs"]),
            Columns.ACTIONS: tensor(sample["actions"]),
            Columns.REWARDS: tensor(sample["rewards"]).float(),
            Columns.NEXT_OBS: tensor(sample["next_obs"]),
            DISCOUNTS: tensor(sample["discounts"]).float(),
            WEIGHTS: tensor(sample["weights"]).float(),
        }

    def update_target(self) -> int:
        """Copy the online net into the target net (a hard update, as in the book)."""
        for module_id in self.module.keys():
            for main_net, target_net in self._q_module(module_id).get_target_network_pairs():
                update_target_network(main_net=main_net, target_net=target_net, tau=1.0)
            self.metrics.log_value((module_id, TARGET_UPDATES), 1, reduce="lifetime_sum")
        return 1
