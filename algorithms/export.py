"""Portable policies: a checkpoint's greedy policy as ONNX, TorchScript or a table, plus a JSON.

`export_policy(checkpoint, "policy.onnx")` restores only the RLModule, as `evaluation.evaluate`
does, and writes the network from observation to what the greedy action is taken from:

- Q-values (DQN, deep SARSA): greedy = argmax;
- categorical logits (REINFORCE, actor-critic, A3C on discrete actions): greedy = argmax;
- the Gaussian mean (actor-critic on a `Box`): greedy = the mean clipped to the bounds;
- a tabular algorithm's Q-table as a `.npy` (greedy = argmax, ties broken at random).

Beside the model it writes `<stem>.json` (`describe_policy`): the algorithm, the env, the spaces,
the preprocessing (the book's Atari pipeline, one-hot for discrete observations), what the
output means and how to act on it. `service/player.py` plays it with onnxruntime and numpy only
(`rldojo play`), and reproduces `rldojo evaluate` episode for episode.

Example:
    >>> export_policy("ckpt", "policy.onnx")  # doctest: +SKIP
    ExportedPolicy(model=PosixPath('policy.onnx'), spec=PosixPath('policy.json'), format='onnx')
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDiagGaussian,
)
from ray.rllib.core.rl_module.rl_module import RLModule
from torch import nn

import algorithms
import envs
from algorithms.common.q_network import EpsilonGreedyQModule
from algorithms.common.tabular import TabularRLModule
from algorithms.evaluation import MODULE_PATH, checkpoint_config
from envs.wrappers import MapActions
from service.policy_format import (
    FORMATS,
    INPUT_NAME,
    OUTPUTS,
    POLICY_SCHEMA,
    SUFFIXES,
    atari_pipeline,
    rldojo_version,
    space_json,
)

logger = logging.getLogger(__name__)


class ExportError(ValueError):
    """The checkpoint cannot be exported in the format asked (a user's mistake, one line)."""


@dataclass(frozen=True)
class ExportedPolicy:
    """The files `export_policy` wrote."""

    model: Path
    spec: Path
    format: str


class GreedyNetwork(nn.Module):
    """The module's inference network, observation -> `output` (a key of `OUTPUTS`)."""

    def __init__(self, module: Any, output: str) -> None:
        super().__init__()
        self.module = module
        self.output = output

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.output == "q_values":
            q_values: torch.Tensor = self.module.q_net(obs)
            return q_values
        inputs: torch.Tensor = self.module.forward_inference({Columns.OBS: obs})[
            Columns.ACTION_DIST_INPUTS
        ]
        if self.output == "action_mean":  # TorchDiagGaussian's inputs are [mean, log std]
            return inputs[..., : inputs.shape[-1] // 2]
        return inputs


def output_kind(module: RLModule) -> str:
    """What the greedy action is taken from: "table", "q_values", "logits" or "action_mean"."""
    if isinstance(module, TabularRLModule):
        return "table"
    if isinstance(module, EpsilonGreedyQModule):
        return "q_values"
    distribution = module.get_inference_action_dist_cls()
    if isinstance(distribution, type) and issubclass(distribution, TorchCategorical):
        return "logits"
    if isinstance(distribution, type) and issubclass(distribution, TorchDiagGaussian):
        return "action_mean"
    raise ExportError(f"cannot export a {type(module).__name__}: no greedy output is known")


def resolve_format(asked: str, kind: str) -> str:
    """The format to write: "auto" is a table for tables and ONNX for networks."""
    if asked not in (*FORMATS, "auto"):
        raise ExportError(f"format must be auto or one of {', '.join(FORMATS)}, got {asked!r}")
    if asked == "auto":
        return "table" if kind == "table" else "onnx"
    if (asked == "table") != (kind == "table"):
        held = "a table" if kind == "table" else "a network"
        use = "table" if kind == "table" else "onnx or torchscript"
        raise ExportError(f"this checkpoint holds {held}: use format {use}, not {asked}")
    return asked


def export_policy(
    checkpoint: str | Path, out: str | Path | None = None, *, format: str = "auto"
) -> ExportedPolicy:
    """Write a checkpoint's greedy policy to `out` and its description to `out` with `.json`.

    Args:
        checkpoint: An algorithm checkpoint directory (as `evaluate` takes).
        out: The model file; without a suffix the format's is added (`.onnx`, `.pt`, `.npy`);
            None: `policy` + that suffix here.
        format: "auto", "onnx", "torchscript" or "table" (tabular algorithms only).

    Returns:
        The paths written and the format.

    Raises:
        CheckpointError: `checkpoint` is not an algorithm checkpoint.
        ExportError: the format does not fit the checkpoint.
    """
    checkpoint = Path(checkpoint).resolve()  # pyarrow reads a relative path as a URI
    config = checkpoint_config(checkpoint)
    module: Any = RLModule.from_checkpoint(str(checkpoint / MODULE_PATH))
    module.eval()
    kind = output_kind(module)
    chosen = resolve_format(format, kind)
    model = Path(out) if out is not None else Path("policy")
    if not model.suffix:  # `--out mine` -> mine.onnx
        model = model.with_suffix(SUFFIXES[chosen])
    if model.suffix == ".json":
        raise ExportError(f"{model}: the model file cannot end in .json (the description does)")
    model.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "table":
        table = module.action_values.detach().cpu().numpy().astype(np.float32)
        with model.open("wb") as handle:  # np.save would append .npy to another suffix
            np.save(handle, table)
    else:
        _write_network(GreedyNetwork(module, kind), module.observation_space, model, chosen)
    spec = describe_policy(config, module, kind=kind, format=chosen, file=model.name)
    spec_path = model.with_suffix(".json")
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    return ExportedPolicy(model=model, spec=spec_path, format=chosen)


def _write_network(network: GreedyNetwork, space: gym.Space, path: Path, format: str) -> None:
    """Trace `network` on two observations of `space` and save it, checking the copy computes
    what the module does."""
    example = torch.as_tensor(np.stack([space.sample(), space.sample()]))
    with torch.no_grad():
        expected = network(example).numpy()
    if format == "torchscript":
        traced = torch.jit.trace(network, example)
        traced.save(str(path))
        with torch.no_grad():
            got = torch.jit.load(str(path))(example).numpy()
    else:
        with warnings.catch_warnings():  # torch.export's notes on its own internals
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[network.output],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {INPUT_NAME: example.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def describe_policy(
    config: dict[str, Any], module: RLModule, *, kind: str, format: str, file: str
) -> dict[str, Any]:
    """The JSON beside an exported policy: enough to run it without rldojo's algorithms."""
    env_id = config["env"]
    env_config = dict(config.get("env_config") or {})
    env = envs.make(env_id, env_config)
    observation_space = module.observation_space
    assert observation_space is not None and module.action_space is not None
    if isinstance(env.observation_space, gym.spaces.Discrete):
        network_input = "index" if kind == "table" else "one_hot"
    else:
        network_input = "as_is"
    pipeline = atari_pipeline(env_id, env_config)
    spec: dict[str, Any] = {
        "schema": POLICY_SCHEMA,
        "rldojo_version": rldojo_version(),
        "format": format,
        "file": file,
        "algorithm": algorithm_name(config),
        "env": env_id,
        "env_config": env_config,
        "seed": config.get("seed"),
        "observation_space": space_json(env.observation_space),
        "action_space": space_json(env.action_space),
        "action_meanings": action_meanings(env),
        "preprocessing": {
            "network_input": network_input,
            "network_space": space_json(observation_space),
            "atari": pipeline,
            "note": _preprocessing_note(network_input, pipeline is not None),
        },
        "input": {
            "name": INPUT_NAME,
            "shape": [None, *(observation_space.shape or ())],
            "dtype": str(observation_space.dtype) if kind != "table" else "int64",
        },
        "output": {"name": kind, **OUTPUTS[kind]},
    }
    env.close()
    return spec


def _preprocessing_note(network_input: str, atari: bool) -> str:
    if atari:
        return (
            "the env id with env_config builds the whole pipeline (envs.make); the network takes "
            "its uint8 frames as they are and scales them by 1/255 itself"
        )
    return {
        "index": "the observation (a state index) is the table's row",
        "one_hot": "the observation index becomes a one-hot float32 vector of length n",
        "as_is": "the observation goes in as it is, with a batch dimension in front",
    }[network_input]


def algorithm_name(config: dict[str, Any]) -> str:
    """The registry name of the checkpoint's algorithm ("dqn"), else its class name."""
    cls = config.get("class")
    module_name = getattr(cls, "__module__", "")
    for entry in algorithms.ALGORITHMS.values():
        if entry.config_path.split(":")[0] == module_name:
            return entry.name
    return getattr(cls, "__name__", "unknown")


def action_meanings(env: gym.Env) -> list[str] | None:
    """The name of each action where the env has them (ALE games, the book's grids)."""
    inner = env.unwrapped
    names: list[str] | None = None
    if hasattr(inner, "get_action_meanings"):
        names = list(inner.get_action_meanings())
    elif type(inner).__module__ == "envs.grid_world":
        from envs.grid_world import ACTION_NAMES

        names = list(ACTION_NAMES)
    current: Any = env
    while isinstance(current, gym.Wrapper):  # the book's Breakout keeps 3 of ALE's actions
        if names is not None and isinstance(current, MapActions):
            names = [names[i] for i in current.indices]
            break
        current = current.env
    return names


# ---- the service's entry point: the export route runs it in its own process -----------------


def main(argv: list[str] | None = None) -> None:
    """`python -m algorithms.export CHECKPOINT --out FILE --format F` (a path or s3:// URI)."""
    parser = argparse.ArgumentParser(description="Export a checkpoint's greedy policy.")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True)
    parser.add_argument("--format", default="auto")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="rldojo-export-") as scratch:
            local = args.checkpoint
            if "://" in local:
                import pyarrow.fs as pafs

                local = str(Path(scratch) / "checkpoint")
                pafs.copy_files(args.checkpoint, local)
            written = export_policy(local, args.out, format=args.format)
    except ValueError as error:  # ExportError, CheckpointError: the caller's to fix
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
    sys.stdout.write(json.dumps({"model": str(written.model), "format": written.format}) + "\n")


if __name__ == "__main__":
    main()
