"""The actor-critic loss (book sections 5.3, 5.4, 6.3), shared by `actor_critic` and `a3c`.

    L = actor_coeff * L_pi + critic_coeff * L_V - entropy_coeff * H
    L_pi = -mean_t log pi(a_t | s_t) * A_t          (A_t is a constant: no gradient into V)
    L_V  = 0.5 * mean_t (G_t - V(s_t))^2             (G_t = A_t + V_old(s_t), also a constant)
    H    = mean_t entropy(pi(. | s_t))

With reduction "sum" the means become sums over the rollout, as in the book's A3C.
Deviation: the book adds 1e-5 (1e-10 in A3C) inside log pi; we use the exact log-probability.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from algorithms.common.restored_lr import ConfiguredLearningRate
from algorithms.common.returns import ADVANTAGES, VALUE_TARGETS, AddAdvantages


def actor_critic_loss(
    module: Any,
    batch: dict[str, Any],
    fwd_out: dict[str, Any],
    *,
    actor_coeff: float,
    critic_coeff: float,
    entropy_coeff: float,
    reduction: str = "mean",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total loss of one batch and its parts (detached), for logging.

    Args:
        module: The actor-critic RLModule (gives the action distribution class).
        batch: Needs `actions` (B,) or (B, D), `advantages` (B,) and `value_targets` (B,).
        fwd_out: `forward_train`'s output: `action_dist_inputs` and `vf_preds` (B,).
        actor_coeff: Weight of the policy-gradient loss.
        critic_coeff: Weight of the value loss.
        entropy_coeff: Weight of the entropy bonus (subtracted).
        reduction: "mean" or "sum" over the batch's timesteps.

    Returns:
        (total loss, {"policy_loss", "vf_loss", "entropy"}).
    """
    reduce = torch.mean if reduction == "mean" else torch.sum
    dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    log_probs = dist.logp(batch[Columns.ACTIONS])  # (B,)
    advantages = batch[ADVANTAGES].detach()  # (B,)
    values = fwd_out[Columns.VF_PREDS]  # (B,)
    policy_loss = -reduce(log_probs * advantages)
    vf_loss = 0.5 * reduce((batch[VALUE_TARGETS].detach() - values) ** 2)
    entropy = reduce(dist.entropy())
    total = actor_coeff * policy_loss + critic_coeff * vf_loss - entropy_coeff * entropy
    parts = {"policy_loss": policy_loss, "vf_loss": vf_loss, "entropy": entropy}
    return total, {key: value.detach() for key, value in parts.items()}


class ActorCriticTorchLearner(ConfiguredLearningRate, TorchLearner):
    """Computes advantages in its connector pipeline, then minimises `actor_critic_loss`."""

    loss_reduction = "mean"

    def build(self) -> None:
        super().build()
        # Last piece: the batch already holds obs/actions/rewards; add A_t and G_t.
        self._learner_connector.append(  # type: ignore[union-attr]
            AddAdvantages(gamma=self.config.gamma, lambda_=self.config.lambda_)
        )

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """Adam, as RLlib's default, but one fused kernel for all parameters.

        torch's default on the CPU is a loop over the tensors, several milliseconds per step
        of A3C's driver for the book's Breakout CNN; the fused kernel takes a tenth of that.
        """
        params = self.get_parameters(self.module[module_id])
        optimizer = torch.optim.Adam(params, fused=True)  # lr: set by register_optimizer
        self.register_optimizer(
            module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr
        )

    def compute_loss_for_module(
        self, *, module_id: str, config: Any = None, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        total, parts = actor_critic_loss(
            self.module[module_id].unwrapped(),
            batch,
            fwd_out,
            actor_coeff=self.config.actor_coeff,
            critic_coeff=self.config.critic_coeff,
            entropy_coeff=self.config.entropy_coeff,
            reduction=self.loss_reduction,
        )
        self.metrics.log_dict(
            {key: value.item() for key, value in parts.items()}, key=module_id, window=1
        )
        return total
