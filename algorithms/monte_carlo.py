"""Monte Carlo control of a state-value table (book section 3.3).

After each episode, walk its samples backwards; each state is updated only the first time the
backward walk meets it (its last visit in forward time):

    G <- r + gamma * G
    V(s) <- V(s) + alpha * (G - V(s))

The agent acts epsilon-greedily on V of the cell each move would enter, i.e. it uses the grid's
known deterministic model: Q(s, a) = V(next(s, a)). As in the book, a sample is (entered state,
reward received on entering it), so V(goal) tends to +100 and V(trap) to -100.

Deviation: G is discounted once per time step. The book discounts once per *distinct* state
(it skips repeated states before discounting), which differs only when a state repeats; the
per-step return is the textbook one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from algorithms.common.tabular import (
    EpisodicTabular,
    TabularConfig,
    TabularLearner,
    episode_arrays,
)


class MonteCarloConfig(TabularConfig):
    """Monte Carlo's settings: `TabularConfig`'s, with the book's defaults."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or MonteCarlo)

    def get_default_learner_class(self) -> type:
        return MonteCarloLearner


class MonteCarloLearner(TabularLearner):
    """Every-episode, last-visit Monte Carlo update of V, then Q(s, a) = V(next(s, a))."""

    def build(self) -> None:
        super().build()
        self.next_state = self.transition_model().next_state  # (S, A)

    def learn_from_episode(self, episode: Any) -> float:
        v = self.table.state_values
        states, _, rewards = episode_arrays(episode)
        entered = states[1:]  # the book stores the entered state with its reward
        ret, seen, errors = 0.0, set(), []
        for state, reward in zip(entered[::-1], rewards[::-1], strict=True):
            ret = reward + self.config.gamma * ret
            if state in seen:
                continue
            seen.add(state)
            error = ret - float(v[state])
            v[state] += self.config.alpha * error
            errors.append(abs(error))
        self.table.action_values.copy_(v[torch.as_tensor(self.next_state)])
        return float(np.mean(errors)) if errors else 0.0


class MonteCarlo(EpisodicTabular):
    @classmethod
    def get_default_config(cls) -> MonteCarloConfig:
        return MonteCarloConfig()
