"""Value iteration (book section 3.2; Bellman 1957).

One synchronous Bellman-optimality sweep over the env's transition model per book button press:

    V(s) <- max_a [ r(s, a) + gamma * V(next(s, a)) ],   V(terminal) = 0

The greedy policy keeps every maximising action (ties are broken at random when acting). On the
book's planning grid the values reach the fixed point of book section 3.2 after 6 sweeps.
"""

from __future__ import annotations

from typing import Any

import torch

from algorithms.common.tabular import Planning, PlanningConfig, TabularLearner


class ValueIterationConfig(PlanningConfig):
    """Value iteration's settings: one sweep per iteration, discount 0.9, as the book."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or ValueIteration)

    def get_default_learner_class(self) -> type:
        return ValueIterationLearner


class ValueIterationLearner(TabularLearner):
    """Sweeps the model with the Bellman optimality backup."""

    def build(self) -> None:
        super().build()
        model = self.transition_model()
        self.next_state = torch.as_tensor(model.next_state)  # (S, A)
        self.reward = torch.as_tensor(model.reward, dtype=torch.float32)  # (S, A)
        self.terminal = torch.as_tensor(model.terminal)  # (S,)

    def lookahead(self, values: torch.Tensor) -> torch.Tensor:
        """r(s, a) + gamma * V(next(s, a)) for every (s, a); 0 in terminal states. (S, A)"""
        q = self.reward + self.config.gamma * values[self.next_state]
        return q.masked_fill(self.terminal[:, None], 0.0)

    def plan(self) -> Any:
        v = self.table.state_values
        sweeps, delta = 0, float("inf")
        while sweeps < self.config.sweeps_per_iteration and delta > self.config.tolerance:
            new_v = self.lookahead(v).max(dim=1).values
            delta = float((new_v - v).abs().max())
            v.copy_(new_v)
            sweeps += 1
        self.table.action_values.copy_(self.lookahead(v))
        self.metrics.log_value(("default_policy", "value_delta"), delta, window=1)
        self.metrics.log_value(("default_policy", "sweeps"), sweeps, reduce="sum")
        return self.metrics.reduce()


class ValueIteration(Planning):
    @classmethod
    def get_default_config(cls) -> ValueIterationConfig:
        return ValueIterationConfig()
