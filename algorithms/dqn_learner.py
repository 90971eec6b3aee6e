"""The DQN loss (book sections 5.2 and 6.2; Mnih et al. 2015) and the learner's replay loop.

    y = r + gamma^n * (1 - done) * max_a' Q_target(s', a')             (n = 1 in the book)
    loss = mean_i w_i * huber(y_i - Q(s_i, a_i))                       (MSE for book 5.2)

Beyond the book: double Q (van Hasselt et al. 2016) picks a' with the online net and evaluates
it with the target net; `w_i` are prioritized-replay importance weights (1 when uniform); the
n-step return and its discount `gamma^k (1 - done)` come precomputed from the replay memory.

The learner pulls its own minibatches from the replay memory, so sample data never passes
through the driver: `learn_from_replay` runs `num_updates` gradient steps. On the replay actor's
node it reads the rings in shared memory itself (`SharedSampler`: one gather per minibatch, into
pinned buffers on a GPU); elsewhere, and for prioritized replay, it asks the actor for chunks of
minibatches, fetching the next chunk while the current one trains.

One gradient step (`_gradient_step`: online and target forward, loss, backward, global-norm clip,
optimizer step) has no host sync and no branch on data. On the CPU it runs eagerly, the
reference; on a GPU it is captured once as a CUDA graph and replayed for every minibatch, which
turns ~100 kernel launches per update into one (the update of the book's batch of 32 is
launch-bound: eagerly it takes as long at batch 256). Losses are summed on the device and read
once per `learn_from_replay` call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from torch.nn import functional

from algorithms.common.cuda_graph import CapturedStep
from algorithms.common.gradients import clean_and_clip_in_place
from algorithms.common.replay_sampler import SharedSampler
from algorithms.common.replay_shards import Replay
from algorithms.common.restored_lr import ConfiguredLearningRate
from algorithms.dqn_rl_module import Q_VALUES, TARGET_Q_VALUES, DQNTorchRLModule

logger = logging.getLogger(__name__)

# Learner metric names (under learners/default_policy/).
QF_LOSS = "qf_loss"
Q_MEAN = "q_mean"
TD_ERROR_ABS_MEAN = "td_error_abs_mean"
UPDATES = "num_gradient_updates"
UPDATES_LIFETIME = "num_gradient_updates_lifetime"
CUDA_GRAPH = "cuda_graph"  # 1 when the updates were replayed from a CUDA graph
UPDATES_PER_SECOND = "gradient_updates_per_second"
TARGET_UPDATES = "num_target_updates_lifetime"
GRADIENT_NORM = "gradient_global_norm"  # before clipping
DISCOUNTS = "discounts"  # gamma^k (1 - done) of each n-step transition
WEIGHTS = "weights"  # importance-sampling weights
HOST_BUFFERS = 2  # minibatches staged in host memory: one copied to the device, one being drawn
# The replay's batch keys and the learner's batch columns.
COLUMNS = {
    "obs": Columns.OBS,
    "next_obs": Columns.NEXT_OBS,
    "actions": Columns.ACTIONS,
    "rewards": Columns.REWARDS,
    "discounts": DISCOUNTS,
    "weights": WEIGHTS,
}


def dqn_loss(
    q_values: torch.Tensor,
    q_next_target: torch.Tensor,
    batch: dict[str, Any],
    *,
    kind: str = "huber",
    q_next_online: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The DQN loss and TD errors of a minibatch.

    Args:
        q_values: Q(s, .) of the online network, (B, A), with gradient.
        q_next_target: Q_target(s', .), (B, A).
        batch: actions a (B,), rewards r (B,) (n-step returns), discounts (B,) = gamma^n or 0,
            weights (B,) importance weights.
        kind: "huber" (book 6.2) or "mse" (book 5.2).
        q_next_online: Q(s', .) of the online network for double Q, else None (plain max).

    Returns:
        mean_i w_i * loss(y_i - Q(s_i, a_i)) and the detached TD errors y - Q(s, a), (B,).
    """
    actions = batch[Columns.ACTIONS].long()  # (B,)
    q_taken = q_values.gather(1, actions[:, None]).squeeze(1)  # Q(s, a): (B,)
    if q_next_online is not None:  # double Q: a' = argmax_a Q(s', a), valued by the target net
        best = q_next_online.argmax(dim=1, keepdim=True)  # (B, 1)
        q_next = q_next_target.gather(1, best).squeeze(1)  # (B,)
    else:  # max_a' Q_target(s', a')
        q_next = q_next_target.max(dim=1).values  # (B,)
    target = (batch[Columns.REWARDS] + batch[DISCOUNTS] * q_next).detach()  # y: (B,)
    td_error = target - q_taken  # (B,)
    if kind == "huber":  # 0.5 d^2 for |d| <= 1, |d| - 0.5 beyond (Keras's Huber, book 6.2)
        per_item = functional.huber_loss(q_taken, target, reduction="none", delta=1.0)
    else:  # d^2 (Keras's MSE on the taken action, book 5.2 v2)
        per_item = td_error.pow(2)
    return (batch[WEIGHTS] * per_item).mean(), td_error.detach()


@dataclass
class ModuleUpdates:
    """What the learner keeps per module between gradient steps.

    Attributes:
        sums: loss, Q mean, |TD| mean and gradient norm, summed on the device over the updates
            of one `learn_from_replay` call (one tensor for good: a captured graph adds into it).
        step_stats: the last step's loss, Q mean and |TD| mean (device scalars).
        td_errors: the last step's TD errors (B,), for prioritized replay.
        batch: the batch a step reads; on a GPU a static one the graph reads in place.
        host: host minibatch buffers, as numpy views of `pinned`.
        pinned: the same buffers as tensors (in pinned memory on a GPU).
        copied: per host buffer, a CUDA event recorded when its copy to the device was queued.
        trained: the parameters that get gradients.
        graph: the captured step; None before a capture and when it failed.
        capture_tried: a capture was tried for the current batch shape and optimizer state.
    """

    sums: torch.Tensor
    step_stats: list[torch.Tensor] = field(default_factory=list)
    td_errors: torch.Tensor | None = None
    batch: dict[str, torch.Tensor] | None = None
    host: list[dict[str, np.ndarray]] = field(default_factory=list)
    pinned: list[dict[str, torch.Tensor]] = field(default_factory=list)
    copied: list[Any] = field(default_factory=list)
    trained: list[torch.Tensor] | None = None
    graph: CapturedStep | None = None
    capture_tried: bool = False

    def forget_graph(self) -> None:
        """Retake the graph at the next step (new batch shape, restored optimizer state)."""
        self.graph, self.capture_tried = None, False


class DQNTorchLearner(ConfiguredLearningRate, TorchLearner):
    """Trains `DQNTorchRLModule`s on minibatches it draws from the replay memory."""

    @classmethod
    def rl_module_required_apis(cls) -> list[type]:
        return [QNetAPI, TargetNetworkAPI]

    def build(self) -> None:
        # One intra-op thread per learner CPU: more threads than cores only spin and wait.
        cpus = self.config.num_cpus_per_learner
        torch.set_num_threads(max(1, int(cpus)) if isinstance(cpus, int | float) else 1)
        super().build()
        for module_id in self.module.keys():
            self._q_module(module_id).make_target_networks()
        self._updates: dict[str, ModuleUpdates] = {}
        self._samplers: dict[tuple[Any, ...], SharedSampler | None] = {}  # per replay memory

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """Adam (book 5.2 and 6.2 v2) or RMSprop with rho 0.9 and epsilon 0.01 (6.2 v1).

        Both step all parameters at once. On the CPU Adam runs in one fused kernel (a tenth of
        torch's default per-tensor loop) and RMSprop, which has none, with foreach; on a GPU
        both are `capturable`, i.e. keep their step counts on the device, so that a CUDA
        graph can capture them.
        """
        params = self.get_parameters(self.module[module_id])
        graphable = {"capturable": True, "foreach": True} if self._device.type == "cuda" else {}
        if config.optimizer_type == "rmsprop":
            optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
                params,
                lr=config.lr,
                alpha=0.9,
                eps=config.optimizer_epsilon,
                **(graphable or {"foreach": True}),
            )
        else:
            optimizer = torch.optim.Adam(
                params, lr=config.lr, eps=config.optimizer_epsilon, **(graphable or {"fused": True})
            )
        self.register_optimizer(
            module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr
        )

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """The book's TD loss on one minibatch (see the module docstring for the equation)."""
        module = self._q_module(module_id)
        with torch.no_grad():  # no gradient through the target
            next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
            q_next_target = module.forward_target(next_batch)[TARGET_Q_VALUES]  # (B, A)
            q_next_online = (
                module.compute_q_values(next_batch)[Q_VALUES] if config.double_q else None
            )
        loss, td_error = dqn_loss(
            fwd_out[Q_VALUES], q_next_target, batch, kind=config.loss, q_next_online=q_next_online
        )
        q_taken = fwd_out[Q_VALUES].detach().gather(1, batch[Columns.ACTIONS].long()[:, None])
        updates = self._module_updates(module_id)
        updates.td_errors = td_error
        updates.step_stats = [loss.detach(), q_taken.mean(), td_error.abs().mean()]
        return loss

    def _q_module(self, module_id: str) -> DQNTorchRLModule:
        module: DQNTorchRLModule = self.module[module_id].unwrapped()  # type: ignore[assignment]
        return module

    def _module_updates(self, module_id: str) -> ModuleUpdates:
        if module_id not in self._updates:
            self._updates[module_id] = ModuleUpdates(sums=torch.zeros(4, device=self._device))
        return self._updates[module_id]

    def set_state(self, state: dict[str, Any]) -> None:
        """RLlib's restore; it replaces the optimizer's state tensors, so graphs are retaken."""
        super().set_state(state)
        for updates in self._updates.values():
            updates.forget_graph()

    # ---- one gradient step -----------------------------------------------------------------

    def _gradient_step(self, module_id: str) -> None:
        """One update on the static batch: Q and target forward, loss, backward, clip, step.

        No host sync and no branch on data, so that a CUDA graph can capture it as it is.
        """
        config = self.config.get_config_for_module(module_id)
        updates = self._module_updates(module_id)
        batch = updates.batch
        assert batch is not None, "a minibatch is staged before each step"
        optimizer = self.get_optimizer(module_id)
        optimizer.zero_grad(set_to_none=True)
        # `forward_train`'s work without its recursive `train()` call per update (no dropout or
        # batch norm here to switch).
        fwd_out = self._q_module(module_id).compute_q_values(batch)  # Q(s, .): (B, A)
        loss = self.compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        loss.backward()
        if updates.trained is None:
            params = self.get_parameters(self.module[module_id])
            updates.trained = [p for p in params if p.requires_grad]
        gradients = [p.grad for p in updates.trained]
        norm = clean_and_clip_in_place(gradients, config.grad_clip)  # type: ignore[arg-type]
        optimizer.step()
        updates.sums += torch.stack([*updates.step_stats, norm])

    def _run_step(self, module_id: str) -> None:
        """The step: replayed from its CUDA graph on a GPU (captured at first use), else eager."""
        config = self.config.get_config_for_module(module_id)
        graphed = (
            self._device.type == "cuda"
            and config.cuda_graph
            and isinstance(config.lr, int | float)  # an lr schedule would not reach the graph
        )
        if not graphed:
            self._gradient_step(module_id)
            return
        updates = self._module_updates(module_id)
        if not updates.capture_tried:
            optimizer = self.get_optimizer(module_id)

            def state() -> list[torch.Tensor]:  # what a step changes (the sums included)
                params = list(self.get_parameters(self.module[module_id]))
                moments = [v for s in optimizer.state.values() for v in s.values()]
                moments = [v for v in moments if isinstance(v, torch.Tensor)]
                return [updates.sums, *params, *moments]

            updates.capture_tried = True
            updates.graph = self._capture(module_id, state)
        captured = updates.graph
        if captured is None:  # the capture failed: eager steps, as on the CPU
            self._gradient_step(module_id)
        else:
            captured.replay()

    def _capture(
        self, module_id: str, state: Callable[[], list[torch.Tensor]]
    ) -> CapturedStep | None:
        """The step as a CUDA graph; None (eager steps from then on) if it cannot be captured."""
        for attempt in (1, 2):
            try:
                return CapturedStep(lambda: self._gradient_step(module_id), state)
            except RuntimeError as error:
                logger.warning("CUDA graph capture %d of 2 failed: %s", attempt, error)
        logger.warning("updating eagerly: the update could not be captured as a CUDA graph")
        return None

    # ---- the replay loop ---------------------------------------------------------------------

    def learn_from_replay(
        self,
        replay: Replay,
        *,
        num_updates: int,
        timesteps: dict[str, Any],
        module_id: str = DEFAULT_MODULE_ID,
    ) -> dict[str, Any]:
        """Run `num_updates` gradient steps, each on a fresh minibatch from `replay`.

        Returns:
            The reduced learner metrics (losses, Q mean, updates and updates/s).
        """
        config = self.config.get_config_for_module(module_id)
        self.before_gradient_based_update(timesteps=timesteps)
        start = time.perf_counter()
        updates = self._module_updates(module_id)
        sums = updates.sums  # one tensor for good: a captured graph adds into it
        sums.zero_()
        batches = self._minibatches(replay, module_id, config, num_updates)
        for slot, minibatch in batches:
            self._stage(module_id, minibatch, slot)
            self._run_step(module_id)
            if replay.prioritized:
                td_errors = updates.td_errors
                assert td_errors is not None, "each step records its TD errors"
                replay.update_priorities(minibatch, td_errors.cpu().numpy())
        loss, q_mean, td_abs, norm = (sums / max(num_updates, 1)).tolist()  # the one sync
        elapsed = time.perf_counter() - start
        self.after_gradient_based_update(timesteps=timesteps)
        for key, value in ((QF_LOSS, loss), (Q_MEAN, q_mean), (TD_ERROR_ABS_MEAN, td_abs)):
            self.metrics.log_value((module_id, key), value, window=1)
        self.metrics.log_value((ALL_MODULES, GRADIENT_NORM), norm, window=1)
        graphed = updates.graph is not None
        self.metrics.log_value((module_id, CUDA_GRAPH), float(graphed), window=1)
        self.metrics.log_value((module_id, UPDATES), num_updates, reduce="sum")
        self.metrics.log_value((module_id, UPDATES_LIFETIME), num_updates, reduce="lifetime_sum")
        self.metrics.log_value((module_id, UPDATES_PER_SECOND), num_updates / max(elapsed, 1e-9))
        return self.metrics.reduce()

    def _minibatches(
        self, replay: Replay, module_id: str, config: Any, count: int
    ) -> Iterator[tuple[int | None, dict[str, np.ndarray]]]:
        """`count` minibatches and the host buffer each lies in (None: not one of ours)."""
        batch_size, beta = config.train_batch_size_per_learner, config.prioritized_replay_beta
        key = tuple(replay.shards)
        if key not in self._samplers:
            self._samplers[key] = SharedSampler.connect(replay, seed=self.config.seed)
        sampler = self._samplers[key]
        if sampler is not None:  # read the rings in shared memory, into our host buffers
            buffers = self._host_buffers(module_id, sampler, batch_size)
            copied = self._module_updates(module_id).copied
            for i in range(count):
                slot = i % len(buffers)
                if copied:
                    copied[slot].synchronize()  # its last copy to the device is done
                sampler.sample_into(buffers[slot])
                yield slot, buffers[slot]
            return
        for minibatch in replay.minibatches(batch_size, count, beta):  # through the actors
            yield None, minibatch

    def _host_buffers(
        self, module_id: str, sampler: SharedSampler, batch_size: int
    ) -> list[dict[str, np.ndarray]]:
        """Host minibatch buffers shaped like the replay's rows; pinned when copied to a GPU."""
        updates = self._module_updates(module_id)
        if updates.host and len(updates.host[0]["actions"]) == batch_size:
            return updates.host
        pinned = self._device.type == "cuda"
        buffers, tensors = sampler.host_buffers(batch_size, HOST_BUFFERS, pinned=pinned)
        updates.host, updates.pinned = buffers, tensors
        updates.copied = [torch.cuda.Event() for _ in buffers] if pinned else []
        return buffers

    def _stage(self, module_id: str, minibatch: dict[str, np.ndarray], slot: int | None) -> None:
        """Put a minibatch where the step reads it: on the CPU our host buffer itself (no copy),
        on a GPU a copy into the static batch the graph reads (without blocking when pinned)."""
        updates = self._module_updates(module_id)
        ours = updates.pinned[slot] if slot is not None else None
        if self._device.type == "cpu" and ours is not None:
            updates.batch = {column: ours[key] for key, column in COLUMNS.items()}
            return
        static = updates.batch
        if static is None or len(static[Columns.ACTIONS]) != len(minibatch["actions"]):
            static = updates.batch = {
                column: torch.empty_like(
                    torch.from_numpy(np.ascontiguousarray(minibatch[key])), device=self._device
                )
                for key, column in COLUMNS.items()
            }
            updates.forget_graph()  # a new batch shape needs a new graph
        for key, column in COLUMNS.items():
            host = ours[key] if ours else torch.from_numpy(np.ascontiguousarray(minibatch[key]))
            static[column].copy_(host, non_blocking=ours is not None)
        if slot is not None and updates.copied:
            updates.copied[slot].record()

    def update_target(self) -> int:
        """Copy the online net into the target net (a hard update, as in the book)."""
        for module_id in self.module.keys():
            for main_net, target_net in self._q_module(module_id).get_target_network_pairs():
                update_target_network(main_net=main_net, target_net=target_net, tau=1.0)
            self.metrics.log_value((module_id, TARGET_UPDATES), 1, reduce="lifetime_sum")
        return 1
