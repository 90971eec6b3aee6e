"""`rldojo export` and `rldojo play`: a trained policy as a file that runs without Ray or torch.

    rldojo export results/run/<trial>/checkpoint_000009 --out policy.onnx
    rldojo export JOB_ID --checkpoint best --format onnx --out policy.onnx   (through the API)
    rldojo play policy.onnx --episodes 10 --seed 0 --video play.mp4

`play` imports onnxruntime, gymnasium and numpy only (`service/player.py`); `export` of a local
checkpoint loads torch and RLlib inside the command, the remote one only httpx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import (
    AsJson,
    EnvSets,
    Token,
    Url,
    UsageError,
    guarded,
    out,
    parse_assignments,
    writable_dir,
    write_json,
)

Format = Annotated[
    str,
    typer.Option("--format", help="auto, onnx, torchscript or table (auto: a table or else ONNX)"),
]


@guarded
def export(
    source: Annotated[str, typer.Argument(help="A checkpoint directory here, or a job id")],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="The model file; its .json goes beside it (policy.onnx)"),
    ] = None,
    format: Format = "auto",
    checkpoint: Annotated[
        str, typer.Option(help="With a job id: a checkpoint id or best")
    ] = "best",
    url: Url = None,
    token: Token = None,
) -> None:
    """Write a checkpoint's greedy policy (ONNX, TorchScript or its table) and its policy.json."""
    if out_file is not None:
        writable_dir(out_file.parent, "--out")
    if Path(source).is_dir():
        from algorithms.evaluation import CheckpointError
        from algorithms.export import ExportError, export_policy

        try:
            written = export_policy(Path(source), out_file, format=format)
        except (ExportError, CheckpointError) as error:
            raise UsageError(str(error)) from None
        model, spec = written.model, written.spec
    elif "/" in source or source.startswith("."):
        raise UsageError(f"no such checkpoint directory: {source}")
    else:
        from service.cli.common import client_for

        with client_for(url, token) as client:
            model, spec = client.export(source, checkpoint, format, out_file)
    out.print(f"{model}\n{spec}", markup=False, highlight=False)


@guarded
def play(
    policy: Annotated[Path, typer.Argument(help="An exported policy (.onnx, .npy or its .json)")],
    env: Annotated[
        str | None, typer.Option(help="Play on this env id instead of the policy's")
    ] = None,
    env_set: EnvSets = None,
    episodes: Annotated[int, typer.Option(min=1, max=10_000, help="Episodes to play")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first episode")] = 0,
    video: Annotated[Path | None, typer.Option(help="Write an MP4 of the first episode")] = None,
    as_json: AsJson = False,
) -> None:
    """Play an exported policy greedily with onnxruntime and gymnasium (no Ray, no torch)."""
    from gymnasium.error import Error as GymError

    from service.player import PolicyError
    from service.player import play as run_policy

    if not policy.exists():
        raise UsageError(f"no such policy file: {policy}")
    if video is not None:
        writable_dir(video.parent, "--video")
    try:
        result = run_policy(
            policy,
            env=env,
            env_config=parse_assignments(env_set, "--env-set"),
            episodes=episodes,
            seed=seed,
            video=video,
        )
    except PolicyError as error:
        raise UsageError(str(error)) from None
    except (ValueError, TypeError, GymError) as error:  # an env id or env_config refused
        raise UsageError(str(error)) from None
    if as_json:
        keys = ("episodes", "return_mean", "return_std", "length_mean", "returns", "video")
        write_json({key: getattr(result, key) for key in keys})
        return
    out.print(
        f"{result.env}: return {result.return_mean:.2f} ± {result.return_std:.2f} over "
        f"{result.episodes} episodes, length {result.length_mean:.1f}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add `export` and `play` to the `rldojo` app."""
    app.command()(export)
    app.command()(play)
