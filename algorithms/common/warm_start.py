"""A warm start: a new run's algorithm begins with another run's network (worker side).

`WarmStart` is an `on_algorithm_init` callback (`AlgorithmConfig.callbacks`): once the algorithm
is built, it loads the checkpoint's RLModule weights into the learner (target networks
included, which live in a module's state), with the learner's optimizer state too when asked,
and RLlib then sends the weights to the EnvRunners. With `keep_replay`, DQN's replay memory is
filled with the checkpoint's. Counters, schedules (epsilon, the learning rate's) and metrics
start afresh: it is a new run from old weights.

Tune calls it in every trial's setup, a resumed or PBT-exploited trial's too; Tune restores
that trial's own checkpoint afterwards, which replaces what the warm start loaded.
"""

from __future__ import annotations

import logging
import pathlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE

logger = logging.getLogger(__name__)

LEARNER = f"{COMPONENT_LEARNER_GROUP}/{COMPONENT_LEARNER}"  # the modules and optimizers
MODULES = f"{LEARNER}/{COMPONENT_RL_MODULE}"  # the modules' weights alone
REPLAY = "replay"  # where DQN saves its replay memory in a checkpoint (algorithms/dqn.py)


@dataclass(frozen=True)
class WarmStart:
    """Load `checkpoint` (a local path or a storage URI) into the algorithm being set up."""

    checkpoint: str
    keep_optimizer: bool = False
    keep_replay: bool = False

    def __call__(self, algorithm: Algorithm, **_: Any) -> None:
        component = LEARNER if self.keep_optimizer else MODULES
        with _local_copy(self.checkpoint) as path:
            # RLlib loads only this component and syncs the EnvRunners' weights after it.
            algorithm.restore_from_path(path / component, component=component)
            if self.keep_replay:
                algorithm.replay.restore(str(path / REPLAY))  # type: ignore[attr-defined]
        logger.info("warm start: %s loaded from %s", component, self.checkpoint)


@contextmanager
def _local_copy(checkpoint: str) -> Iterator[pathlib.Path]:
    """The checkpoint as a local directory: itself when local, else a temporary copy (the
    replay memory is read from local files)."""
    if "://" not in checkpoint:
        yield pathlib.Path(checkpoint)
        return
    filesystem, path = pafs.FileSystem.from_uri(checkpoint)
    if isinstance(filesystem, pafs.LocalFileSystem):
        yield pathlib.Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="rldojo-warm-start-") as local:
        pafs.copy_files(path, local, source_filesystem=filesystem)
        yield pathlib.Path(local)
