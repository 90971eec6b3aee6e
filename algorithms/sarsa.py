"""SARSA (book section 3.4; Rummery & Niranjan 1994).

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * Q(s', a') - Q(s, a))

On-policy: a' is the action the epsilon-greedy agent actually took next, so the table values the
exploring policy, random slips included. Next to the traps a slip costs -100, so SARSA rightly
learns to prefer a longer path that keeps away from them (it still reaches the goal, return
+100), where Q-learning takes the 6-step path along their edge.

Deviations: the table is updated after each sampled episode, in time order, rather than during
it. When the step limit truncates an episode, its last transition has no next action and is not
used (terminal transitions use Q(terminal, .) = 0, as in the book).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from algorithms.common.tabular import (
    EpisodicTabular,
    TabularConfig,
    TabularLearner,
    episode_arrays,
)


class SarsaConfig(TabularConfig):
    """SARSA's settings: `TabularConfig`'s, with the book's defaults."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or Sarsa)

    def get_default_learner_class(self) -> type:
        return SarsaLearner


class SarsaLearner(TabularLearner):
    """Applies the SARSA backup to every (s, a, r, s', a') of an episode."""

    def learn_from_episode(self, episode: Any) -> float:
        q = self.table.action_values
        states, actions, rewards = episode_arrays(episode)
        errors = []
        for t in range(len(actions)):
            if t + 1 < len(actions):
                next_value = float(q[states[t + 1], actions[t + 1]])
            elif episode.is_terminated:
                next_value = 0.0  # the terminal state's row stays 0
            else:
                break  # truncated: the next action was never chosen
            error = rewards[t] + self.config.gamma * next_value - float(q[states[t], actions[t]])
            q[states[t], actions[t]] += self.config.alpha * error
            errors.append(abs(error))
        return float(np.mean(errors)) if errors else 0.0


class Sarsa(EpisodicTabular):
    @classmethod
    def get_default_config(cls) -> SarsaConfig:
        return SarsaConfig()
