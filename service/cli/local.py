"""The `rldojo` commands that work on this machine: train, evaluate, and the listings.

    rldojo train q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --out results
    rldojo evaluate results/run/<trial>/checkpoint_000029 --episodes 10 --json
    rldojo algorithms | rldojo envs

Ray, torch and RLlib are imported inside the commands that use them, never at module level.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from service.cli.common import (
    AsJson,
    Env,
    EnvSets,
    Epsilon,
    EvalProtocol,
    ProtocolName,
    Seed,
    Sets,
    SpecFile,
    StopIters,
    StopReturn,
    StopSeconds,
    StopTimesteps,
    UsageError,
    fail,
    guarded,
    out,
    score_line,
    spec_body,
    writable_dir,
    write_json,
)


class ProgressDisplay:
    """A live line per trial on a terminal; one plain line per iteration in logs (Ray Jobs)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.live = sys.stdout.isatty()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            console=out,
            disable=not self.live,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, row: dict[str, Any]) -> None:
        from service.cli.common import progress_line

        line = progress_line(row, with_trial=False, with_speed=True)
        trial = str(row.get("trial_id", "trial"))
        if not self.live:
            out.print(f"{trial}  {line}", markup=False, highlight=False)
            return
        if trial not in self.tasks:
            self.tasks[trial] = self.progress.add_task(trial, total=None, line="")
        self.progress.update(self.tasks[trial], line=line)


@guarded
def train(
    algorithm: Annotated[
        str | None, typer.Argument(help="Algorithm name (rldojo algorithms)")
    ] = None,
    out_dir: Annotated[
        str, typer.Option("--out", help="Directory or s3:// URI for results and checkpoints")
    ] = "results",
    env: Env = None,
    set_: Sets = None,
    env_set: EnvSets = None,
    stop_iters: StopIters = None,
    stop_timesteps: StopTimesteps = None,
    stop_return: StopReturn = None,
    stop_seconds: StopSeconds = None,
    seed: Seed = None,
    spec: SpecFile = None,
    name: Annotated[str, typer.Option(help="Experiment name inside --out")] = "run",
    resume: Annotated[
        bool, typer.Option(help="Continue the experiment at --out/--name from its checkpoints")
    ] = False,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(
            "--mlflow-uri",
            help="Log each trial as an MLflow run to this tracking store "
            "(sqlite:///mlflow.db, http://host:5000)",
        ),
    ] = None,
) -> None:
    """Train ALGORITHM as a Ray Tune job on the current Ray (local unless RAY_ADDRESS is set)."""
    logging.getLogger("ray").setLevel(logging.WARNING)
    # The trainer says what it decided (where a resume starts, a stop request seen).
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s -- %(message)s")
    logging.getLogger("service").setLevel(logging.INFO)
    from service.compiler import CompiledJob, compile_job
    from service.driver.callbacks import ProgressCallback
    from service.driver.run import train as train_compiled
    from service.jobdir import JobDirectory
    from service.spec import parse_spec

    # A str, not a Path: Path("s3://bucket/x") would collapse to the local path "s3:/bucket/x".
    if "://" not in out_dir:
        out_dir = str(writable_dir(Path(out_dir), "--out").resolve())
    directory = JobDirectory.open(f"{out_dir.rstrip('/')}/{name}")
    given = algorithm is not None or spec is not None
    stored = directory.read_compiled()
    if resume and stored is None:
        raise UsageError(f"nothing to resume at {directory.uri}")
    if resume and stored is not None and not given:
        compiled = CompiledJob.model_validate(stored)
    else:
        stops = (stop_iters, stop_timesteps, stop_return, stop_seconds)
        body = spec_body(algorithm, spec, env, set_, env_set, stops, seed)
        if mlflow_uri is not None:
            tracking = body.get("tracking") or {}
            if not isinstance(tracking, dict):
                raise UsageError("the spec's tracking must be a JSON object")
            body["tracking"] = {**tracking, "mlflow": True}
        compiled = compile_job(parse_spec(body), mlflow_uri=mlflow_uri)
    if stored is None:
        directory.write_spec(compiled.spec.model_dump(mode="json"))
        directory.write_compiled(compiled.model_dump(mode="json"))
    with ProgressDisplay() as display:
        summary = train_compiled(
            compiled, directory, resume=resume, callbacks=[ProgressCallback(display.update)]
        )
    failed = [t for t in summary.trials if t.status == "ERROR"]
    # Plain lines (never wrapped): scripts and tests read these paths back.
    sys.stdout.write(f"results: {summary.experiment_path}\n")
    sys.stdout.write(f"best checkpoint: {summary.best_checkpoint}\n")
    if failed:
        raise fail(f"{len(failed)} trial(s) failed: {failed[0].error}", code=1)


@guarded
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint directory")],
    episodes: Annotated[int, typer.Option(min=1, max=10_000, help="Episodes to play")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first episode")] = 0,
    epsilon: Epsilon = None,
    protocol: EvalProtocol = ProtocolName.book,
    video: Annotated[Path | None, typer.Option(help="Write an MP4 of the first episode")] = None,
    as_json: AsJson = False,
    max_frames: Annotated[
        int | None,
        typer.Option(hidden=True, min=1, help="Replace the protocol's frame cap (tests, toys)"),
    ] = None,
) -> None:
    """Play a checkpoint's policy under a protocol and print its score (on ALE games also the
    human-normalized score)."""
    if not checkpoint.exists():
        raise UsageError(f"no such checkpoint: {checkpoint}")
    if video is not None:
        writable_dir(video.parent, "--video")
    import dataclasses

    from algorithms.evaluation import PROTOCOLS
    from algorithms.evaluation import evaluate as run_evaluation

    chosen = PROTOCOLS[protocol.value]
    if max_frames is not None:
        chosen = dataclasses.replace(chosen, max_frames=max_frames)
    result = run_evaluation(
        checkpoint, episodes=episodes, seed=seed, epsilon=epsilon, protocol=chosen, video=video
    )
    if as_json:
        write_json(result.model_dump())
        return
    played = f"{result.env} ({result.game})" if result.game else result.env
    out.print(f"{played}: {score_line(result.model_dump())}", markup=False)


def list_algorithms(as_json: AsJson = False) -> None:
    """List the algorithms and what they train on."""
    import algorithms

    entries = list(algorithms.ALGORITHMS.values())
    if as_json:
        write_json(
            [
                {
                    "name": e.name,
                    "book_section": e.book_section,
                    "default_env": e.default_env,
                    "envs": list(e.envs),
                    "summary": e.summary,
                }
                for e in entries
            ]
        )
        return
    table = Table("name", "book", "default env", "envs", "summary")
    for entry in entries:
        table.add_row(
            entry.name, entry.book_section, entry.default_env, ", ".join(entry.envs), entry.summary
        )
    out.print(table)


def list_envs(
    as_json: AsJson = False,
    games: Annotated[
        bool, typer.Option("--games", help="List the ALE games rldojo/Atari-v0 plays instead.")
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the ids that do not build here, and why.")
    ] = False,
) -> None:
    """List the env ids this Python can make, with their kind and spaces (any is a job's env)."""
    from envs.catalog import catalog

    if games:
        from envs.atari import game_names

        names = game_names()
        if as_json:
            write_json(names)
        else:
            out.print(", ".join(names))
        return

    found = [entry for entry in catalog() if show_all or entry.kind is not None]
    if as_json:
        write_json(
            [
                {
                    "id": entry.id,
                    "observation": entry.kind.observation if entry.kind else None,
                    "action": entry.kind.action if entry.kind else None,
                    "observation_space": entry.observation_space,
                    "action_space": entry.action_space,
                    "problem": entry.problem,
                }
                for entry in found
            ]
        )
        return
    table = Table("id", "kind", "observation space", "action space")
    for entry in found:
        kind = f"{entry.kind.observation} / {entry.kind.action}" if entry.kind else "-"
        spaces = (entry.observation_space, entry.action_space)
        table.add_row(entry.id, kind, *(spaces if entry.kind else (entry.problem or "", "")))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the local commands to the `rldojo` app."""
    app.command()(train)
    app.command()(evaluate)
    app.command("algorithms")(list_algorithms)
    app.command("envs")(list_envs)
