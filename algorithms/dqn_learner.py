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
from typing import Any

import numpy as np
import torch
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from torch.nn import functional

from algorithms.common.gradients import clean_and_clip_in_place
from algorithms.common.replay import Replay
from algorithms.common.replay_sampler import SharedSampler
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
MINIBATCHES_PER_CALL = 8  # minibatches fetched from the replay actor per round trip
HOST_BUFFERS = 2  # minibatches staged in host memory: one copied to the device, one being drawn
GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture (torch's recipe)
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


def _start_autograd_cuda_worker() -> None:
    """Run one throwaway backward on the GPU (unrelated tensors), once per process.

    On an H200 with torch 2.11, the first CUDA graph capture of a process failed ("operation
    would make the legacy stream depend on a capturing blocking stream") when the first backward
    of the process was part of its warm-up: the parameters' gradient-accumulation nodes were
    tied to the default stream, which a capture cannot wait on. Captures in processes that had
    run a backward before worked, as did torch's recipe in bench/gpu_dqn.py after eager steps.
    """
    if getattr(_start_autograd_cuda_worker, "done", False):
        return
    probe = torch.ones(1, device="cuda", requires_grad=True)
    (probe * 2.0).sum().backward()
    torch.cuda.synchronize()
    _start_autograd_cuda_worker.done = True  # type: ignore[attr-defined]


class CapturedStep:
    """A training step captured once as a CUDA graph; `replay()` runs it again.

    torch's recipe: a few eager steps on a side stream (they allocate the optimizer's state and
    let cuDNN pick its kernels), then the capture, here on that same stream: a parameter's
    gradient-accumulation node remembers the stream it was made on, and a backward captured on
    another stream would have to sync with it. Where torch offers it, stale streams of such
    nodes are also redirected to the capture (`set_override_stale_capture_stream`). The warm-up
    steps are undone, so the first replay starts from exactly the weights and optimizer state
    there were before.

    Args:
        step: The step; it reads only tensors that stay in place (the static batch).
        state: Every tensor the step changes: parameters and optimizer state.
    """

    def __init__(self, step: Callable[[], None], state: Callable[[], list[torch.Tensor]]) -> None:
        _start_autograd_cuda_worker()
        before = [tensor.clone() for tensor in state()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_STEPS):
                step()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():  # undo: tensors that did not exist yet restart from zero
            for i, tensor in enumerate(state()):
                tensor.copy_(before[i]) if i < len(before) else tensor.zero_()
        override = getattr(torch.autograd.graph, "set_override_stale_capture_stream", None)
        self.graph = torch.cuda.CUDAGraph()
        try:
            if override is not None:
                override(True)
            with torch.cuda.graph(self.graph, stream=side):
                step()
        finally:
            if override is not None:
                override(False)

    def replay(self) -> None:
        self.graph.replay()


class DQNTorchLearner(TorchLearner):
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
        self._td_errors: dict[str, torch.Tensor] = {}
        self._step_stats: dict[str, list[torch.Tensor]] = {}
        self._stat_sums: dict[str, torch.Tensor] = {}  # loss, Q mean, |TD| mean, grad norm
        self._batches: dict[str, dict[str, torch.Tensor]] = {}  # static device batches
        self._host: dict[str, list[dict[str, np.ndarray]]] = {}  # host buffers, as numpy
        self._pinned: dict[str, list[dict[str, torch.Tensor]]] = {}  # the same, as tensors
        self._copied: dict[str, list[Any]] = {}  # CUDA events: host buffer copied
        self._graphs: dict[str, CapturedStep | None] = {}
        self._trained: dict[str, list[torch.nn.Parameter]] = {}  # parameters with gradients
        self._samplers: dict[tuple[Any, ...], SharedSampler | None] = {}

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
        self._td_errors[module_id] = td_error
        q_taken = fwd_out[Q_VALUES].detach().gather(1, batch[Columns.ACTIONS].long()[:, None])
        self._step_stats[module_id] = [loss.detach(), q_taken.mean(), td_error.abs().mean()]
        return loss

    def _q_module(self, module_id: str) -> DQNTorchRLModule:
        module: DQNTorchRLModule = self.module[module_id].unwrapped()  # type: ignore[assignment]
        return module

    def set_state(self, state: dict[str, Any]) -> None:
        """RLlib's restore; it replaces the optimizer's state tensors, so graphs are retaken."""
        super().set_state(state)
        self._graphs.clear()

    # ---- one gradient step -----------------------------------------------------------------

    def _gradient_step(self, module_id: str) -> None:
        """One update on the static batch: Q and target forward, loss, backward, clip, step.

        No host sync and no branch on data, so that a CUDA graph can capture it as it is.
        """
        config = self.config.get_config_for_module(module_id)
        batch = self._batches[module_id]
        optimizer = self.get_optimizer(module_id)
        optimizer.zero_grad(set_to_none=True)
        # `forward_train`'s work without its recursive `train()` call per update (no dropout or
        # batch norm here to switch).
        fwd_out = self._q_module(module_id).compute_q_values(batch)  # Q(s, .): (B, A)
        loss = self.compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        loss.backward()
        if module_id not in self._trained:
            params = self.get_parameters(self.module[module_id])
            self._trained[module_id] = [p for p in params if p.requires_grad]
        gradients = [p.grad for p in self._trained[module_id]]
        norm = clean_and_clip_in_place(gradients, config.grad_clip)  # type: ignore[arg-type]
        optimizer.step()
        self._stat_sums[module_id] += torch.stack([*self._step_stats[module_id], norm])

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
        if module_id not in self._graphs:
            optimizer = self.get_optimizer(module_id)

            def state() -> list[torch.Tensor]:  # what a step changes (the sums included)
                params = list(self.get_parameters(self.module[module_id]))
                moments = [v for s in optimizer.state.values() for v in s.values()]
                moments = [v for v in moments if isinstance(v, torch.Tensor)]
                return [self._stat_sums[module_id], *params, *moments]

            self._graphs[module_id] = self._capture(module_id, state)
        captured = self._graphs[module_id]
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
        if module_id not in self._stat_sums:  # one tensor for good: the graph adds into it
            self._stat_sums[module_id] = torch.zeros(4, device=self._device)
        sums = self._stat_sums[module_id]
        sums.zero_()
        batches = self._minibatches(replay, module_id, config, num_updates)
        for slot, minibatch in batches:
            self._stage(module_id, minibatch, slot)
            self._run_step(module_id)
            if replay.prioritized:
                replay.update_priorities(minibatch, self._td_errors[module_id].cpu().numpy())
        loss, q_mean, td_abs, norm = (sums / max(num_updates, 1)).tolist()  # the one sync
        elapsed = time.perf_counter() - start
        self.after_gradient_based_update(timesteps=timesteps)
        for key, value in ((QF_LOSS, loss), (Q_MEAN, q_mean), (TD_ERROR_ABS_MEAN, td_abs)):
            self.metrics.log_value((module_id, key), value, window=1)
        self.metrics.log_value((ALL_MODULES, GRADIENT_NORM), norm, window=1)
        graphed = self._graphs.get(module_id) is not None
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
            for i in range(count):
                slot = i % len(buffers)
                if self._copied.get(module_id):
                    self._copied[module_id][slot].synchronize()  # its last copy is done
                sampler.sample_into(buffers[slot])
                yield slot, buffers[slot]
            return
        # Through the actor: chunks of minibatches, one round trip each, the next chunk
        # fetched while this one trains. Prioritized replay draws one at a time, so that each
        # draw sees the priorities of the update before it.
        chunk = 1 if replay.prioritized else MINIBATCHES_PER_CALL
        remaining = count
        pending = replay.sample_async(batch_size, beta, count=min(chunk, remaining))
        while remaining > 0:
            minibatches = replay.collect(pending)
            remaining -= len(minibatches)
            if remaining > 0:
                pending = replay.sample_async(batch_size, beta, count=min(chunk, remaining))
            for minibatch in minibatches:
                yield None, minibatch

    def _host_buffers(
        self, module_id: str, sampler: SharedSampler, batch_size: int
    ) -> list[dict[str, np.ndarray]]:
        """Host minibatch buffers shaped like the replay's rows; pinned when copied to a GPU."""
        buffers = self._host.get(module_id)
        if buffers and len(buffers[0]["actions"]) == batch_size:
            return buffers
        pinned = self._device.type == "cuda"
        template = sampler.empty_batch(batch_size)
        buffers, tensors = [], []
        for _ in range(HOST_BUFFERS):
            tensors.append(
                {
                    key: torch.from_numpy(value).clone().pin_memory()
                    if pinned
                    else torch.from_numpy(value.copy())
                    for key, value in template.items()
                }
            )
            buffers.append({key: tensor.numpy() for key, tensor in tensors[-1].items()})
        self._host[module_id], self._pinned[module_id] = buffers, tensors
        self._copied[module_id] = [torch.cuda.Event() for _ in buffers] if pinned else []
        return buffers

    def _stage(self, module_id: str, minibatch: dict[str, np.ndarray], slot: int | None) -> None:
        """Put a minibatch where the step reads it: on the CPU our host buffer itself (no copy),
        on a GPU a copy into the static batch the graph reads (without blocking when pinned)."""
        ours = self._pinned[module_id][slot] if slot is not None else None
        if self._device.type == "cpu" and ours is not None:
            self._batches[module_id] = {column: ours[key] for key, column in COLUMNS.items()}
            return
        static = self._batches.get(module_id)
        if static is None or len(static[Columns.ACTIONS]) != len(minibatch["actions"]):
            static = self._batches[module_id] = {
                column: torch.empty_like(
                    torch.from_numpy(np.ascontiguousarray(minibatch[key])), device=self._device
                )
                for key, column in COLUMNS.items()
            }
            self._graphs.pop(module_id, None)  # a new batch shape needs a new graph
        for key, column in COLUMNS.items():
            host = ours[key] if ours else torch.from_numpy(np.ascontiguousarray(minibatch[key]))
            static[column].copy_(host, non_blocking=ours is not None)
        if slot is not None and self._copied.get(module_id):
            self._copied[module_id][slot].record()

    def update_target(self) -> int:
        """Copy the online net into the target net (a hard update, as in the book)."""
        for module_id in self.module.keys():
            for main_net, target_net in self._q_module(module_id).get_target_network_pairs():
                update_target_network(main_net=main_net, target_net=target_net, tau=1.0)
            self.metrics.log_value((module_id, TARGET_UPDATES), 1, reduce="lifetime_sum")
        return 1
