"""n-step returns of a run of steps, as the replay memory stores them (1 = the book's DQN).

`R = sum_k gamma^k r_{t+k}` for k < n, stopping after a step that is terminal for the targets
(a game over, or a lost life when the writer is told to treat it so, as the book's DQN does);
the transition stores `discount = gamma^k` (0 after a terminal step) so that the learner's target
is `R + discount * max_a Q'(s_{t+k}, a)`. Steps whose n-step window is still open at the end of
a chunk wait in the memory for the next chunk of the same episode.

Example:
    >>> windows = n_step_windows(
    ...     np.ones(3), np.array([False, False, True]), ended=True, n_step=2, gamma=0.5
    ... )
    >>> windows.ready, windows.returns.tolist(), windows.discounts.tolist()
    (3, [1.5, 1.5, 1.0], [0.25, 0.0, 0.0])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStepWindows(NamedTuple):
    """The first `ready` steps' windows are complete (the rest wait for more steps).

    Attributes:
        ready: steps whose window is complete: a prefix of the steps.
        returns: R of each step (float64), (T,).
        next_obs: index of the observation each window bootstraps from, (T,).
        discounts: gamma^k, or 0 after a terminal step, (T,).
    """

    ready: int
    returns: np.ndarray
    next_obs: np.ndarray
    discounts: np.ndarray


def n_step_windows(
    rewards: np.ndarray, dones: np.ndarray, *, ended: bool, n_step: int, gamma: float
) -> NStepWindows:
    """The n-step windows of steps t = 0..T-1 (rewards and dones (T,)), observations 0..T.

    A window is complete once it holds n steps, reaches a terminal step, or the episode
    `ended` (its last windows are shorter).
    """
    length = len(rewards)
    start = np.arange(length)
    returns = np.zeros(length, dtype=np.float64)
    next_obs = start.copy()  # index into the observations of each window's last observation
    open_window = np.ones(length, dtype=bool)  # no terminal step seen yet
    for k in range(n_step):
        step = start + k
        use = open_window & (step < length)
        returns[use] += gamma**k * rewards[step[use]]
        next_obs[use] = step[use] + 1
        terminal = np.zeros(length, dtype=bool)
        terminal[use] = dones[step[use]]
        open_window &= ~terminal
    used = next_obs - start
    ready = ~open_window | (used == n_step) | ended
    # Ready steps form a prefix: the last n - 1 steps of an unfinished chunk may wait.
    count = int(np.argmin(ready)) if not ready.all() else length
    discounts = np.where(open_window, gamma ** used.astype(np.float64), 0.0)
    return NStepWindows(count, returns, next_obs, discounts)
