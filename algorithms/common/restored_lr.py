"""After a restore, each optimizer trains at the config's learning rate, not the checkpoint's;
and the learner reports the rate each step was taken at.

RLlib's restore loads an optimizer's param groups from the checkpoint, its learning rate among
them, and the learner's lr schedule writes the config's rate back only after the next update.
A Population Based Training trial restores *another* trial's checkpoint under a perturbed
config (Tune's PBT: exploit, then explore), so its first update would train at the other
trial's rate (ray-project/ray#62173 reports PBT's perturbations lost on restore this way).

RLlib's own `default_optimizer_learning_rate` metric is read after the schedule has written
the config's rate back, so it cannot show which rate a step used; the learner metric
`<optimizer>_stepped_learning_rate` (the mean over the iteration's steps) is read as each step
is taken.
"""

from __future__ import annotations

from typing import Any

import torch

STEPPED = "stepped_learning_rate"


class ConfiguredLearningRate:
    """Mixin for a `TorchLearner` (listed before it): the config's rate again after a restore."""

    _optimizer_lr_schedules: dict[Any, Any]
    _module_optimizers: dict[str, list[str]]
    _named_optimizers: dict[str, Any]
    metrics: Any

    def apply_gradients(self, gradients_dict: Any) -> None:
        for module_id, names in self._module_optimizers.items():
            for name in names:
                rate = float(self._named_optimizers[name].param_groups[0]["lr"])
                key = f"{name[len(module_id) + 1 :]}_{STEPPED}"
                self.metrics.log_value((module_id, key), rate, reduce="mean")
        super().apply_gradients(gradients_dict)  # type: ignore[misc]

    def _set_optimizer_state(self, state: Any) -> None:
        super()._set_optimizer_state(state)  # type: ignore[misc]
        for optimizer, schedule in self._optimizer_lr_schedules.items():
            rate = float(schedule.get_current_value())
            for group in optimizer.param_groups:
                if isinstance(group["lr"], torch.Tensor):  # a captured graph reads it in place
                    group["lr"].fill_(rate)
                else:
                    group["lr"] = rate


def optimizer_learning_rates(learner: Any) -> dict[str, float]:
    """The rate each of a learner's optimizers steps at now, by optimizer name."""
    return {
        name: float(optimizer.param_groups[0]["lr"])
        for name, optimizer in learner._named_optimizers.items()
    }
