"""Cart-pole with a continuous push, for the book's continuous actor-critic (book §5.4)."""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import logger, spaces

_SCREEN_W, _SCREEN_H = 600, 400


class ContinuousCartPoleEnv(gym.Env[np.ndarray, np.ndarray]):
    """The classic cart-pole whose push is a real number in [-3, 3] instead of left/right.

    ## Description

    The copy of the cart-pole dynamics that the book's revised edition ships for its continuous
    actor-critic (§5.4): a pole hinged on a cart that moves along a frictionless track. The
    physics are those of Gymnasium's `CartPole-v1` (Barto, Sutton and Anderson, 1983) with
    Euler integration, tau = 0.02 s, gravity 9.8, cart 1.0 kg, pole 0.1 kg, pole half-length 0.5.

    ## Action Space

    `Box(-3, 3, shape=(1,), float32)`: the force on the cart is `10 * action` newtons (up to
    30 N either way; positive pushes right). Actions outside [-3, 3] are clipped, as the book's
    agent clips its Gaussian sample.

    ## Observation Space

    `Box(shape=(4,), float32)`: cart position (observable in ±4.8), cart velocity, pole angle
    (observable in ±24 degrees, in radians) and pole angular velocity, unnormalised.

    ## Rewards

    +1 for every step, the failing step included. The book's training script rescales it
    (+0.1, and -1 on failure); that shaping belongs to the algorithm, not to the environment.

    ## Starting State

    All four state variables uniform in [-0.05, 0.05], drawn from `self.np_random`.

    ## Episode End

    - Termination: |pole angle| > 12 degrees or |cart position| > 2.4.
    - Truncation: `rldojo/ContinuousCartPole-v0` adds a 500-step `TimeLimit`, like the book's
      registration (which also sets the reward threshold 475).

    ## Arguments

    - `render_mode` (None or "rgb_array"): "rgb_array" draws a 600x400 frame with numpy (no
      pygame needed).

    Attributes:
        state: The float64 `(x, x_dot, theta, theta_dot)`, public as in Gymnasium's CartPole.

    Example:
        >>> env = ContinuousCartPoleEnv()
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space
        ((4,), Box(-3.0, 3.0, (1,), float32))
        >>> obs, reward, terminated, truncated, info = env.step(np.array([1.0], dtype=np.float32))
        >>> reward, terminated
        (1.0, False)
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    length = 0.5  # half the pole's length
    force_mag = 10.0
    tau = 0.02  # seconds between state updates
    max_action = 3.0
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, render_mode: str | None = None) -> None:
        """Build the environment.

        Args:
            render_mode: None or "rgb_array".

        Raises:
            ValueError: if `render_mode` is not supported.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode

        # Twice the failure limits, so a failing state is still inside the space (as CartPole-v1).
        high = np.array(
            [
                self.x_threshold * 2,
                np.finfo(np.float32).max,
                self.theta_threshold_radians * 2,
                np.finfo(np.float32).max,
            ],
            dtype=np.float32,
        )
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-self.max_action, self.max_action, (1,), np.float32)

        self.state = np.zeros(4, dtype=np.float64)
        self._steps_beyond_terminated: int | None = None

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply `10 * clip(action, -3, 3)` newtons for one Euler step of 0.02 s.

        Args:
            action: one float (any array of size 1).

        Returns:
            observation, reward (+1), terminated (pole or cart out of bounds), truncated (False),
            an empty info dict.

        Raises:
            ValueError: if `action` does not hold exactly one number.
        """
        push = np.asarray(action, dtype=np.float64)
        if push.size != 1:
            raise ValueError(f"action must hold one number, got shape {push.shape}")
        force = self.force_mag * float(np.clip(push.item(), -self.max_action, self.max_action))

        x, x_dot, theta, theta_dot = self.state
        costheta, sintheta = math.cos(theta), math.sin(theta)
        total_mass = self.masspole + self.masscart
        polemass_length = self.masspole * self.length
        # The cart-pole equations of motion (Florian 2007, as in Gymnasium's CartPole).
        temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        # Explicit Euler: positions advance with the old velocities.
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = np.array([x, x_dot, theta, theta_dot], dtype=np.float64)

        terminated = bool(abs(x) > self.x_threshold or abs(theta) > self.theta_threshold_radians)
        if not terminated:
            reward = 1.0
        elif self._steps_beyond_terminated is None:
            self._steps_beyond_terminated = 0
            reward = 1.0  # the failing step still counts, as in CartPole-v1 and the book
        else:
            if self._steps_beyond_terminated == 0:
                logger.warn(
                    "step() called after the episode terminated; call reset() first. "
                    "Further steps are undefined and give reward 0."
                )
            self._steps_beyond_terminated += 1
            reward = 0.0
        return self.state.astype(np.float32), reward, terminated, False, {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw the state uniformly in [-0.05, 0.05]^4.

        Args:
            seed: Seeds `self.np_random`.
            options: Unused.

        Returns:
            The observation and an empty info dict.
        """
        super().reset(seed=seed)
        self.state = self.np_random.uniform(low=-0.05, high=0.05, size=(4,))
        self._steps_beyond_terminated = None
        return self.state.astype(np.float32), {}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """Draw track, cart and pole with numpy.

        Returns:
            A `(400, 600, 3)` uint8 frame in "rgb_array" mode, else None.
        """
        if self.render_mode != "rgb_array":
            return None
        scale = _SCREEN_W / (2 * self.x_threshold)  # pixels per metre
        pole_len = scale * 2 * self.length
        cart_w, cart_h, pole_w = 50.0, 30.0, 10.0
        track_y = _SCREEN_H - 100.0  # image rows grow downwards

        frame = np.full((_SCREEN_H, _SCREEN_W, 3), 255, dtype=np.uint8)
        rows, cols = np.mgrid[0:_SCREEN_H, 0:_SCREEN_W].astype(np.float64) + 0.5
        frame[int(track_y), :] = 0

        x, _, theta, _ = self.state
        cart_x = x * scale + _SCREEN_W / 2
        cart = (np.abs(cols - cart_x) <= cart_w / 2) & (np.abs(rows - track_y) <= cart_h / 2)
        frame[cart] = (0, 0, 0)

        # The pole is every pixel within pole_w / 2 of the segment from the axle to its tip.
        axle_x, axle_y = cart_x, track_y - cart_h / 4
        dir_x, dir_y = math.sin(theta), -math.cos(theta)
        along = np.clip((cols - axle_x) * dir_x + (rows - axle_y) * dir_y, 0.0, pole_len)
        dist2 = (cols - axle_x - along * dir_x) ** 2 + (rows - axle_y - along * dir_y) ** 2
        frame[dist2 <= (pole_w / 2) ** 2] = (202, 152, 101)

        axle = (cols - axle_x) ** 2 + (rows - axle_y) ** 2 <= (pole_w / 2) ** 2
        frame[axle] = (129, 132, 203)
        return frame
