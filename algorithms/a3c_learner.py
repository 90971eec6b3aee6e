"""A3C's central learner (book section 6.3; Mnih et al. 2016, Algorithm S3).

It never sees a sample. Each rollout worker sends the gradient of the actor-critic loss it
computed on its own rollout (`actor_critic_loss` with sums over the rollout, as the paper and the
book); `apply_worker_gradients` clips it to the global norm `grad_clip`, applies it to the shared
weights with the shared optimizer, bumps the weights' version and returns the new weights for
that worker alone.
"""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from algorithms.actor_critic_learner import ActorCriticTorchLearner
from algorithms.common.gradients import clean_and_clip


class A3CTorchLearner(ActorCriticTorchLearner):
    """Applies workers' gradients one at a time, as they arrive, and versions the weights."""

    loss_reduction = "sum"  # the paper and the book sum the loss over the rollout

    def build(self) -> None:
        super().build()
        self.weights_version = 0  # number of gradients applied so far

    def apply_worker_gradients(
        self, gradients: list[np.ndarray]
    ) -> tuple[dict[str, np.ndarray], int, float]:
        """One asynchronous update.

        Args:
            gradients: d loss / d theta for every parameter, in `module.parameters()` order
                (the worker's module is built from the same spec, so the order matches).

        Returns:
            (the new weights as numpy arrays, their version, the gradient's global norm
            before clipping).
        """
        module = self.module[DEFAULT_MODULE_ID]
        params = list(module.parameters())
        if len(params) != len(gradients):
            raise ValueError(f"got {len(gradients)} gradients for {len(params)} parameters")
        grads = {
            self.get_param_ref(param): torch.tensor(grad, device=param.device)
            for param, grad in zip(params, gradients, strict=True)
        }
        # nan/inf entries become 0 (RLlib's default), then the clip to `grad_clip` (global norm)
        grads, norm = clean_and_clip(grads, self.config.grad_clip)
        self.apply_gradients(grads)
        self.weights_version += 1
        return self.get_weights(), self.weights_version, norm

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of the shared module's weights as numpy arrays (a worker's `set_state` input).

        A copy, not views of the live tensors, which the next update changes in place.
        """
        state = self.module[DEFAULT_MODULE_ID].state_dict()
        return {name: tensor.detach().cpu().numpy().copy() for name, tensor in state.items()}
