"""Exploration schedules shared by the value-based algorithms (DQN, deep SARSA).

The book uses two shapes of epsilon decay, both counted in training steps:

- exponential: `epsilon <- max(final, epsilon * factor)` once per step (CartPole DQN, book 5.2:
  factor 0.999 after the replay warm-up; deep SARSA, book 4.1: factor 0.9999 from the start);
- linear: from `initial` to `final` over `decay_steps` steps (Breakout DQN, book 6.2: 1.0 to
  0.02 over 1,000,000 steps after the 50,000-step warm-up).

Example:
    >>> book_cartpole = EpsilonSchedule(1.0, 0.01, "exponential", factor=0.999, start=1000)
    >>> book_cartpole.value(1000), round(book_cartpole.value(2000), 4)
    (1.0, 0.3677)
    >>> EpsilonSchedule(1.0, 0.1, "linear", decay_steps=100).value(50)
    0.55
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

DecayShape = Literal["linear", "exponential"]


@dataclass(frozen=True)
class EpsilonSchedule:
    """Epsilon as a pure function of the global step count.

    Attributes:
        initial: Epsilon until `start` and at `start`.
        final: The floor epsilon decays to.
        shape: "linear" (reach `final` after `decay_steps`) or "exponential" (x `factor`/step).
        decay_steps: Steps from `initial` to `final` for the linear shape.
        factor: Per-step multiplier for the exponential shape.
        start: Step at which decay begins (the book starts after the replay warm-up).
    """

    initial: float
    final: float
    shape: DecayShape = "linear"
    decay_steps: int = 0
    factor: float = 1.0
    start: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.final <= self.initial <= 1.0:
            raise ValueError(
                f"need 0 <= final ({self.final}) <= initial ({self.initial}) <= 1 for epsilon"
            )
        if self.shape not in ("linear", "exponential"):
            raise ValueError(f"shape={self.shape!r} must be 'linear' or 'exponential'")
        if self.shape == "exponential" and not 0.0 < self.factor <= 1.0:
            raise ValueError(f"factor={self.factor} must be in (0, 1] for exponential decay")
        if self.decay_steps < 0 or self.start < 0:
            raise ValueError(f"decay_steps={self.decay_steps} and start={self.start} must be >= 0")

    def value(self, step: int) -> float:
        """Epsilon after `step` global steps."""
        done = max(0, step - self.start)
        if self.shape == "exponential":
            # initial * factor**done, computed in log space so huge `done` cannot underflow.
            if self.factor == 1.0 or self.initial == 0.0:
                return max(self.final, self.initial)
            log_value = math.log(self.initial) + done * math.log(self.factor)
            return max(self.final, math.exp(max(log_value, -700.0)))
        if self.decay_steps == 0:
            return self.final if done > 0 else self.initial
        fraction = min(1.0, done / self.decay_steps)
        return self.initial + fraction * (self.final - self.initial)
