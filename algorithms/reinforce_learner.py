"""REINFORCE's loss (book section 4.2; Williams 1992).

    L = -(1 / N) * sum_episodes sum_t log pi(a_t | s_t) * (G^_t - b(s_t))
        + baseline_coeff * 0.5 * mean_t (G^_t - b(s_t))^2        (only with a baseline)

G^_t are the episode's discounted returns standardised within the episode (mean 0, std 1),
N the number of episodes in the batch (the book: N = 1, one update per episode), and b(s_t) the
optional learned baseline (0 without one, as in the book). The book's v2 adds 1e-5 inside the
log; we use the exact log-probability.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from algorithms.common.restored_lr import ConfiguredLearningRate
from algorithms.common.returns import AddNormalisedReturns


def reinforce_loss(
    module: Any,
    batch: dict[str, Any],
    fwd_out: dict[str, Any],
    *,
    num_episodes: int,
    baseline_coeff: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The REINFORCE loss of one batch of whole episodes and its parts (detached).

    Args:
        module: The policy RLModule (gives the action distribution class).
        batch: Needs `actions` (B,) and `returns_to_go` (B,), the standardised returns.
        fwd_out: `forward_train`'s output: `action_dist_inputs`, plus `vf_preds` with a baseline.
        num_episodes: Episodes in the batch; the loss is the per-episode sum averaged over them.
        baseline_coeff: Weight of the baseline's value loss.

    Returns:
        (total loss, {"policy_loss", "entropy"} plus "vf_loss" with a baseline).
    """
    dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    log_probs = dist.logp(batch[Columns.ACTIONS])  # (B,)
    returns = batch[Columns.RETURNS_TO_GO]  # (B,) standardised G^_t
    values = fwd_out.get(Columns.VF_PREDS)
    signal = returns if values is None else returns - values.detach()
    policy_loss = -(log_probs * signal).sum() / num_episodes
    parts = {"policy_loss": policy_loss, "entropy": dist.entropy().mean()}
    total = policy_loss
    if values is not None:
        parts["vf_loss"] = 0.5 * ((returns - values) ** 2).mean()
        total = total + baseline_coeff * parts["vf_loss"]
    return total, {key: value.detach() for key, value in parts.items()}


class ReinforceTorchLearner(ConfiguredLearningRate, TorchLearner):
    """Adds standardised returns in its connector pipeline, then minimises `reinforce_loss`."""

    def build(self) -> None:
        super().build()
        self._learner_connector.append(  # type: ignore[union-attr]
            AddNormalisedReturns(gamma=self.config.gamma, normalise=self.config.normalise_returns)
        )

    def compute_loss_for_module(
        self, *, module_id: str, config: Any = None, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        total, parts = reinforce_loss(
            self.module[module_id].unwrapped(),
            batch,
            fwd_out,
            num_episodes=self.config.episodes_per_iteration,
            baseline_coeff=self.config.baseline_coeff,
        )
        self.metrics.log_dict(
            {key: value.item() for key, value in parts.items()}, key=module_id, window=1
        )
        return total
