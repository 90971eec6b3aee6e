"""Policy iteration (book section 3.1; Howard 1960).

Each iteration evaluates the current policy on the env's transition model, then improves it:

    evaluate:  V(s) <- sum_a pi(a|s) [ r(s, a) + gamma * V(next(s, a)) ],   V(terminal) = 0
    improve:   pi(.|s) <- uniform over argmax_a [ r(s, a) + gamma * V(next(s, a)) ]

The policy starts uniform (0.25 each) and keeps ties, as the book's "Improve" button does.
Evaluation runs up to `sweeps_per_iteration` sweeps (default 100, stopping at `tolerance`): the
book's "Evaluate" button is one sweep (`--set sweeps_per_iteration=1`), and the fixed point it
reaches by repeated presses is the same (book section 3.1).

The module's `action_values` table holds pi itself, so acting greedily with random tie-breaks
samples exactly from pi (it is uniform over its best actions).
"""

from __future__ import annotations

from typing import Any

import torch

from algorithms.common.tabular import Planning, PlanningConfig, PlanningHyperparameters
from algorithms.value_iteration import ValueIterationLearner


class PolicyIterationConfig(PlanningConfig):
    """Policy iteration's settings: evaluate to convergence, then improve; discount 0.9."""

    HYPERPARAMETERS = PlanningHyperparameters.with_defaults(
        sweeps_per_iteration=100  # evaluation sweeps before each improvement
    )

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or PolicyIteration)

    def get_default_learner_class(self) -> type:
        return PolicyIterationLearner


class PolicyIterationLearner(ValueIterationLearner):
    """Shares value iteration's model and look-ahead; replaces the backup with evaluate+improve."""

    def build(self) -> None:
        super().build()
        self.table.action_values.fill_(1.0 / self.table.action_values.shape[1])  # uniform pi

    def plan(self) -> Any:
        v, policy = self.table.state_values, self.table.action_values
        sweeps, delta = 0, float("inf")
        while sweeps < self.config.sweeps_per_iteration and delta > self.config.tolerance:
            new_v = (policy * self.lookahead(v)).sum(dim=1)
            delta = float((new_v - v).abs().max())
            v.copy_(new_v)
            sweeps += 1
        improved = self.greedy_policy(self.lookahead(v))
        changed = int((improved != policy).any(dim=1).sum())
        policy.copy_(improved)
        self.metrics.log_value(("default_policy", "value_delta"), delta, window=1)
        self.metrics.log_value(("default_policy", "sweeps"), sweeps, reduce="sum")
        self.metrics.log_value(("default_policy", "policy_states_changed"), changed, window=1)
        return self.metrics.reduce()

    def greedy_policy(self, q: torch.Tensor) -> torch.Tensor:
        """Uniform probability over each state's maximising actions (ties kept). (S, A)"""
        best = torch.isclose(q, q.max(dim=1, keepdim=True).values, rtol=0.0, atol=1e-9)
        best = best.float().masked_fill(self.terminal[:, None], 0.0)
        return best / best.sum(dim=1, keepdim=True).clamp(min=1.0)


class PolicyIteration(Planning):
    @classmethod
    def get_default_config(cls) -> PolicyIterationConfig:
        return PolicyIterationConfig()
