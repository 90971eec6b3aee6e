"""Q-learning (book section 3.5; Watkins 1989).

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') - Q(s, a))

Off-policy: the agent behaves epsilon-greedily but learns the value of the greedy policy, so on
the book's grid it learns the shortest path (6 steps, return +100) right past the traps.
Exploration defaults to the intended 10 % (`epsilon=0.1`); the book's published code ran with
90 % random actions by mistake (book section 3.5), which `--set epsilon=0.9` reproduces.

Deviation: the table is updated after each sampled episode, transition by transition in time
order, rather than in the middle of the episode; the rule itself is the book's.
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


class QLearningConfig(TabularConfig):
    """Q-learning's settings: `TabularConfig`'s, with the book's defaults."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or QLearning)

    def get_default_learner_class(self) -> type:
        return QLearningLearner


class QLearningLearner(TabularLearner):
    """Applies the Q-learning backup to every transition of an episode."""

    def learn_from_episode(self, episode: Any) -> float:
        q = self.table.action_values
        states, actions, rewards = episode_arrays(episode)
        errors = []
        for t, (state, action, reward) in enumerate(
            zip(states[:-1], actions, rewards, strict=True)
        ):
            next_state = states[t + 1]
            # A terminal state's row is never updated, so max Q there stays 0: no bootstrap.
            target = reward + self.config.gamma * float(q[next_state].max())
            error = target - float(q[state, action])
            q[state, action] += self.config.alpha * error
            errors.append(abs(error))
        return float(np.mean(errors)) if errors else 0.0


class QLearning(EpisodicTabular):
    @classmethod
    def get_default_config(cls) -> QLearningConfig:
        return QLearningConfig()
