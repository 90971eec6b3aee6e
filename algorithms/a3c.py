"""A3C: asynchronous advantage actor-critic (book section 6.3; Mnih et al. 2016, Algorithm S3).

N rollout workers (RLlib EnvRunners, each a Ray actor with its own env and its own copy of the
policy/value network) repeat, independently of each other:

1. take the newest weights the learner sent to this worker;
2. act for up to `t_max` steps (a rollout);
3. compute n-step returns backwards, G_t = r_t + gamma G_{t+1}, bootstrapped from V(s_T) of the
   state after the last step (0 at a terminal state; the book's code used the state before the
   last action, an off-by-one), and advantages A_t = G_t - V(s_t);
4. compute the gradient of sum_t [-log pi(a_t|s_t) A_t + critic_coeff 0.5 (G_t - V(s_t))^2
   - entropy_coeff H(pi(.|s_t))] on the worker, and send only the gradient.

The learner applies each gradient as soon as it arrives (no barrier across workers: a slow or
dead worker never holds the others up), then sends the new weights back to that worker alone.
A gradient may thus have been computed on weights several updates old: the number of updates
between the weights a gradient was computed on and the weights it is applied to is its
"lag", reported per iteration with gradients/s and env steps/s.

A worker that dies (a killed actor, a crashing env) is restarted by RLlib's fault tolerance and
gets the current weights with its next request; `a3c/num_env_runner_restarts` counts restarts.

Deviations: the book's v2 uses Adam lr 1e-4 and clip 40 (kept); 16 threads in one process
become N Ray actors (default 2, the cores here). Rollouts may span an episode boundary (each
episode chunk is bootstrapped on its own) instead of stopping early at the end of an episode.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from pydantic import Field
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, LEARNER_UPDATE_TIMER, TIMERS

from algorithms.a3c_learner import A3CTorchLearner
from algorithms.actor_critic import (
    ActorCritic,
    ActorCriticConfig,
    SharedActorCriticHyperparameters,
)
from algorithms.actor_critic_learner import actor_critic_loss
from algorithms.common.config import PerIteration, Preset
from algorithms.common.returns import ADVANTAGES, VALUE_TARGETS, episode_advantages

A3C = "a3c"  # namespace of A3C's own metrics in the result dict
WAIT_TIMER = "a3c_wait_for_gradients"
APPLY_TIMER = LEARNER_UPDATE_TIMER


# Settings per env family, applied before a user's own values (algorithms.build).
PRESETS: dict[str, Preset] = {
    "book_breakout": Preset(
        values={},
        stop={"env_steps": 10_000_000},
        envs=("rldojo/Breakout-v0", "rldojo/Atari-v0", "family:atari", "family:image-discrete"),
        summary="the book's v2 Breakout agent (the config's defaults), for every ALE game",
    ),
    "cartpole": Preset(
        values={"lr": 1e-3},
        stop={"env_steps": 300_000, "return_mean": 475.0},
        envs=("CartPole-v1",),
        summary="Adam 1e-3 for the small MLP (475 in ~40k steps, pg_cartpole.md)",
    ),
    "vector": Preset(
        values={"lr": 1e-3},
        stop={"env_steps": 300_000},
        envs=("family:vector-discrete",),
        summary="cartpole's Adam 1e-3 for any vector env",
    ),
}


class A3CHyperparameters(
    SharedActorCriticHyperparameters.with_defaults(  # type: ignore[misc]
        lr=1e-4,  # Adam step size of the shared optimizer (book v2: 1e-4)
        grad_clip=40.0,  # global-norm clip of each worker's gradient (book v2: 40)
        actor_coeff=1.0,  # weight of the policy loss (book: 1)
        critic_coeff=0.5,  # weight of the 0.5 * squared error value loss (book v2: 0.5)
        entropy_coeff=0.01,  # entropy bonus (book: 0.01)
        lambda_=1.0,  # n-step returns over the rollout, as A3C (lambda_=1)
    )
):
    """A3C's hyperparameters: the actor-critic ones, with the book's v2 Breakout defaults (6.3),
    and its asynchronous rollouts."""

    t_max: PerIteration = Field(  # book: 20
        20, description="Most env steps a worker samples before it computes and sends a gradient."
    )
    gradients_per_iteration: PerIteration = Field(
        50, description="Least worker gradients applied per training iteration."
    )


class A3CConfig(ActorCriticConfig):
    """A3C settings; the defaults are the book's v2 Breakout agent (section 6.3)."""

    HYPERPARAMETERS = A3CHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or A3CAlgorithm)  # the record's defaults, then:
        self.num_env_runners = 2  # asynchronous rollout workers (book: 8 or 16 threads)
        self.env_runner_cls = A3CEnvRunner
        self.min_sample_timesteps_per_iteration = 0  # an iteration is `gradients_per_iteration`
        self.restart_failed_env_runners = True  # a dead worker is restarted, training goes on
        self.delay_between_env_runner_restarts_s = 0.5  # RLlib's default waits 60 s
        # Tune reserves CPUs per trial; ask for N workers + driver = N cores, not N + 1, so the
        # default 2 workers start on a 2-core machine (`rldojo train`, the service):
        self.num_cpus_for_main_process = 0.5  # the driver only applies gradients
        self.num_cpus_per_learner = 0  # its local learner lives in that driver process
        self.num_cpus_per_env_runner = 0.75  # each worker, which does the env and the backprop
        # The learner checks each gradient's global norm for nan/inf once
        # (common/gradients.py), not RLlib's two passes over every tensor.
        self.torch_skip_nan_gradients = True

    def validate(self) -> None:
        super().validate()
        if self.num_env_runners < 1 and not self.in_evaluation:
            raise ValueError(
                f"num_env_runners={self.num_env_runners}: A3C needs at least 1 rollout worker"
            )

    def get_default_learner_class(self) -> type:
        return A3CTorchLearner


# ---- the rollout worker -----------------------------------------------------------------------


class A3CEnvRunner(SingleAgentEnvRunner):
    """An EnvRunner that turns its own rollout into a gradient (steps 1-4 of the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        torch.set_num_threads(1)  # one core per worker, as the paper's CPU threads

    def make_module(self) -> None:
        """The full module (value head included), not RLlib's inference-only copy."""
        env = self.env.unwrapped if self.env is not None else None
        spec = self.config.get_rl_module_spec(env=env, spaces=self.get_spaces())
        self.module = spec.build()

    def rollout_gradient(self, weights: dict[str, np.ndarray] | None, version: int) -> dict:
        """Load `weights` (version `version`), sample `t_max` steps, return the loss gradient."""
        if weights is not None:
            self.module.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
        episodes = self.sample(num_timesteps=self.config.t_max)
        advantages, targets = episode_advantages(
            self.module, episodes, self.config.gamma, self.config.lambda_
        )
        batch = {
            Columns.OBS: torch.as_tensor(
                np.concatenate([np.asarray(e.get_observations())[:-1] for e in episodes])
            ),
            Columns.ACTIONS: torch.as_tensor(np.concatenate([e.get_actions() for e in episodes])),
            ADVANTAGES: torch.as_tensor(np.concatenate(advantages), dtype=torch.float32),
            VALUE_TARGETS: torch.as_tensor(np.concatenate(targets), dtype=torch.float32),
        }
        loss, parts = actor_critic_loss(
            self.module,
            batch,
            self.module.forward_train(batch),
            actor_coeff=self.config.actor_coeff,
            critic_coeff=self.config.critic_coeff,
            entropy_coeff=self.config.entropy_coeff,
            reduction="sum",
        )
        params = list(self.module.parameters())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return {
            "gradients": [
                np.zeros(p.shape, np.float32) if g is None else g.numpy()
                for p, g in zip(params, grads, strict=True)
            ],
            "version": version,
            "steps": int(batch[Columns.ACTIONS].shape[0]),
            "losses": {key: float(value) for key, value in parts.items()},
            "env_runner_metrics": self.get_metrics(),
        }


# ---- the algorithm ---------------------------------------------------------------------------


class A3CAlgorithm(ActorCritic):
    """The asynchronous loop: apply each worker's gradient on arrival, answer that worker only."""

    @classmethod
    def get_default_config(cls) -> A3CConfig:
        return A3CConfig()

    def setup(self, config: AlgorithmConfig) -> None:
        super().setup(config)
        self._busy: set[int] = set()  # workers with a rollout in flight

    def training_step(self) -> None:
        """Apply (at least) `gradients_per_iteration` worker gradients, each as soon as it arrives:

        - start a rollout on every idle worker (first call, restarted workers);
        - wait for any worker's gradient (never for all of them);
        - apply it to the shared weights (the learner's optimizer), version += 1;
        - send the new weights back to that worker only, which starts its next rollout.
        """
        start, applied, steps, runner_metrics = time.perf_counter(), 0, 0, []
        while applied < self.config.gradients_per_iteration:
            self._start_idle_workers()
            if not self._busy:
                break  # every worker is dead: the next iteration restores them first
            with self.metrics.log_time((TIMERS, WAIT_TIMER)):
                ready = self.env_runner_group.fetch_ready_async_reqs(tags=A3C, timeout_seconds=0.05)
            for worker_id, result in ready:
                self._busy.discard(worker_id)
                with self.metrics.log_time((TIMERS, APPLY_TIMER)):
                    weights, version, norm = self._apply(result["gradients"])
                self._send(worker_id, weights, version)
                self._log_update(worker_id, result, version, norm)
                runner_metrics.append(result["env_runner_metrics"])
                applied, steps = applied + 1, steps + result["steps"]
            self._busy &= set(self.env_runner_group.healthy_worker_ids())
        self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
        self._sync_local_runner()  # so `get_module()` and checkpoints see the newest weights
        elapsed = max(time.perf_counter() - start, 1e-9)
        self.metrics.log_dict(
            {
                "gradients_per_second": applied / elapsed,
                "env_steps_per_second": steps / elapsed,
                "num_env_runner_restarts": self.env_runner_group.num_remote_worker_restarts(),
                "weights_version": self._version,
            },
            key=A3C,
            window=1,
        )

    # ---- helpers -----------------------------------------------------------------------------

    @property
    def _version(self) -> int:
        return int(getattr(self, "_weights_version", 0))

    def _apply(self, gradients: list[np.ndarray]) -> tuple[dict[str, np.ndarray], int, float]:
        results = self.learner_group.foreach_learner(
            lambda learner: learner.apply_worker_gradients(gradients)
        )
        weights, version, norm = next(iter(results)).get()
        self._weights_version = version
        return weights, version, norm

    def _send(self, worker_id: int, weights: dict[str, np.ndarray] | None, version: int) -> None:
        """Start worker `worker_id`'s next rollout on `weights` (None: keep its own)."""
        sent = self.env_runner_group.foreach_env_runner_async(
            lambda runner: runner.rollout_gradient(weights, version),
            tag=A3C,
            remote_worker_ids=[worker_id],
        )
        if sent:
            self._busy.add(worker_id)

    def _start_idle_workers(self) -> None:
        idle = set(self.env_runner_group.healthy_worker_ids()) - self._busy
        if not idle:
            return
        weights = next(
            iter(self.learner_group.foreach_learner(lambda learner: learner.get_weights()))
        ).get()
        for worker_id in sorted(idle):
            self._send(worker_id, weights, self._version)

    def _sync_local_runner(self) -> None:
        local = self.env_runner_group.local_env_runner
        if local is not None and local.module is not None:
            weights = next(
                iter(self.learner_group.foreach_learner(lambda learner: learner.get_weights()))
            ).get()
            local.module.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})

    def _log_update(self, worker_id: int, result: dict, version: int, norm: float) -> None:
        lag = version - 1 - result["version"]  # updates applied since its weights were sent
        self.metrics.log_value((A3C, "weights_version_lag_mean"), lag, reduce="mean")
        self.metrics.log_value((A3C, "weights_version_lag_max"), lag, reduce="max")
        self.metrics.log_value((A3C, "gradients_applied"), 1, reduce="sum")
        self.metrics.log_value((A3C, f"gradients_applied_worker_{worker_id}"), 1, reduce="sum")
        self.metrics.log_value((A3C, "gradient_norm"), norm, reduce="mean")
        for key, value in result["losses"].items():
            self.metrics.log_value((A3C, key), value, reduce="mean")
