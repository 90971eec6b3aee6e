"""The job spec's scheduler and searcher as Tune's own (driver side): ASHA, PBT, Optuna,
HyperOpt.

Nothing here schedules by hand: `tune_scheduler` and `tune_searcher` only translate the spec's
plain data into Tune's classes, with the metric named by its result key. The pausing wrapper
(`service.pausing.PauseAtStop`) goes around the scheduler, so a stop request and the job's stop
criteria still pause trials with a checkpoint, while ASHA's early stop ends a trial for good.

PBT's perturbations multiply a continuous hyperparameter by 0.8 or 1.2, which can leave its
domain (a discount of 0.99 x 1.2 is no discount); `ClipToDomains` keeps each in the domain
the spec gave, so every perturbed trial is one the submit checks would have passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from algorithms.common import metrics
from service.spec_model import (
    AshaSpec,
    ChoiceSearch,
    JobSpec,
    LogUniformSearch,
    PbtSpec,
    SampledDomain,
)

# The spec's metric names, as result keys.
METRICS = {"return_mean": metrics.EPISODE_RETURN_MEAN}


def tune_scheduler(spec: JobSpec) -> TrialScheduler | None:
    """The spec's scheduler as Tune's; None when it names none (Tune's FIFO then)."""
    scheduler = spec.scheduler
    if isinstance(scheduler, AshaSpec):
        return ASHAScheduler(
            time_attr=metrics.ITERATION,
            metric=METRICS[scheduler.metric],
            mode=scheduler.mode,
            max_t=scheduler.max_t or spec.stop.iterations or 100,
            grace_period=scheduler.grace_period,
            reduction_factor=scheduler.reduction_factor,
        )
    if isinstance(scheduler, PbtSpec):
        return PopulationBasedTraining(
            time_attr=metrics.ITERATION,
            metric=METRICS[scheduler.metric],
            mode=scheduler.mode,
            perturbation_interval=scheduler.perturbation_interval,
            hyperparam_mutations={
                key: pbt_mutation(domain) for key, domain in scheduler.hyperparam_mutations.items()
            },
            quantile_fraction=scheduler.quantile_fraction,
            resample_probability=scheduler.resample_probability,
            custom_explore_fn=ClipToDomains.of(scheduler),
            synch=True,
        )
    return None


def pbt_mutation(domain: SampledDomain) -> Any:
    """A list is shifted one place or resampled; a range is multiplied or resampled."""
    if isinstance(domain, ChoiceSearch):
        return list(domain.choice)
    if isinstance(domain, LogUniformSearch):
        return tune.loguniform(*domain.loguniform)
    return tune.uniform(*domain.uniform)


@dataclass(frozen=True)
class ClipToDomains:
    """PBT's `custom_explore_fn`: each perturbed range hyperparameter back inside its range
    (Tune pickles the scheduler with the experiment, so this is data, not a closure)."""

    bounds: tuple[tuple[str, float, float], ...]

    @classmethod
    def of(cls, scheduler: PbtSpec) -> ClipToDomains:
        bounds = []
        for key, domain in scheduler.hyperparam_mutations.items():
            if not isinstance(domain, ChoiceSearch):
                low, high = (
                    domain.loguniform if isinstance(domain, LogUniformSearch) else (domain.uniform)
                )
                bounds.append((key, float(low), float(high)))
        return cls(tuple(bounds))

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for key, low, high in self.bounds:
            value = config.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                clipped = min(max(value, low), high)
                config[key] = type(value)(clipped) if isinstance(value, int) else clipped
        return config


def tune_searcher(spec: JobSpec) -> Searcher | None:
    """The spec's searcher as Tune's; None for random (Tune's own variant generator)."""
    searcher = spec.searcher
    if searcher is None or searcher.type == "random":
        return None
    metric, mode = METRICS[searcher.metric], searcher.mode
    # Each imports its library: only when a job asks for it.
    if searcher.type == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        model: Searcher = HyperOptSearch(metric=metric, mode=mode, random_state_seed=spec.seed)
    else:
        from ray.tune.search.optuna import OptunaSearch

        model = OptunaSearch(metric=metric, mode=mode, seed=spec.seed)
    if searcher.max_concurrent is not None:
        return ConcurrencyLimiter(model, max_concurrent=searcher.max_concurrent)
    return model
