"""The `rldojo` command line: train and evaluate locally; talk to the service (cli_client.py).

    rldojo train q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --out results
    rldojo evaluate results/run/<trial>/checkpoint_000029 --episodes 10 --json
    rldojo algorithms | rldojo envs

Bad input prints one line naming the problem and exits non-zero; never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="rldojo",
    help="The RLCode book's algorithms, trained on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

T = TypeVar("T")


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def guarded(command: Callable[..., T]) -> Callable[..., T]:
    """Turn the errors a user can cause into one line and a non-zero exit."""
    import functools

    from algorithms import UnknownAlgorithmError
    from algorithms.evaluation import CheckpointError
    from service.spec import SpecError

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except (UsageError, SpecError, CheckpointError, UnknownAlgorithmError) as error:
            raise fail(str(error)) from None
        except FileNotFoundError as error:
            raise fail(f"no such file: {error.filename or error}") from None

    return wrapper


# ---- local training and evaluation -----------------------------------------------------------


def parse_assignments(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """`["gamma=0.9", "traps=[[1,2]]"]` -> {"gamma": 0.9, "traps": [[1, 2]]} (values as JSON)."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects key=value, got {pair!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw  # a bare word is a string
    return values


def spec_from_options(
    algorithm: str | None,
    spec_file: Path | None,
    env: str | None,
    sets: list[str] | None,
    env_sets: list[str] | None,
    stop: dict[str, Any],
    seed: int | None,
) -> Any:
    from service.spec import parse_spec

    if spec_file is not None:
        try:
            data = json.loads(spec_file.read_text())
        except json.JSONDecodeError as error:
            raise UsageError(f"{spec_file} is not valid JSON: {error}") from None
    elif algorithm is not None:
        data = {"algorithm": algorithm}
    else:
        raise UsageError("give an ALGORITHM or --spec FILE")
    if algorithm is not None:
        data["algorithm"] = algorithm
    if env is not None:
        data["env"] = env
    data.setdefault("config", {}).update(parse_assignments(sets, "--set"))
    data.setdefault("env_config", {}).update(parse_assignments(env_sets, "--env-set"))
    data.setdefault("stop", {}).update({k: v for k, v in stop.items() if v is not None})
    if seed is not None:
        data["seed"] = seed
    return parse_spec(data)


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
            console=console,
            disable=not self.live,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, row: dict[str, Any]) -> None:
        from algorithms.common import metrics

        def number(key: str, fmt: str) -> str:
            value = row.get(key)
            return format(value, fmt) if isinstance(value, int | float) else "-"

        line = (
            f"iter {row.get(metrics.ITERATION, '-')}  "
            f"steps {number(metrics.ENV_STEPS, '.0f')}  "
            f"return {number(metrics.EPISODE_RETURN_MEAN, '.2f')}  "
            f"steps/s {number(metrics.ENV_STEPS_PER_SECOND, '.0f')}"
        )
        trial = str(row.get("trial_id", "trial"))
        if not self.live:
            console.print(f"{trial}  {line}", markup=False, highlight=False)
            return
        if trial not in self.tasks:
            self.tasks[trial] = self.progress.add_task(trial, total=None, line="")
        self.progress.update(self.tasks[trial], line=line)


@app.command()
@guarded
def train(
    algorithm: Annotated[
        str | None, typer.Argument(help="Algorithm name (rldojo algorithms)")
    ] = None,
    out: Annotated[
        str, typer.Option("--out", help="Directory or s3:// URI for results and checkpoints")
    ] = "results",
    env: Annotated[str | None, typer.Option(help="Env id (rldojo envs)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Config override key=value (JSON value)")
    ] = None,
    env_set: Annotated[
        list[str] | None, typer.Option("--env-set", help="env_config key=value")
    ] = None,
    stop_iters: Annotated[int | None, typer.Option(help="Stop after N iterations")] = None,
    stop_timesteps: Annotated[int | None, typer.Option(help="Stop after N env steps")] = None,
    stop_return: Annotated[float | None, typer.Option(help="Stop at this mean return")] = None,
    stop_seconds: Annotated[float | None, typer.Option(help="Stop after S seconds")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for envs, torch and numpy")] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="A job spec JSON file")] = None,
    name: Annotated[str, typer.Option(help="Experiment name inside --out")] = "run",
    resume: Annotated[
        bool, typer.Option(help="Continue the experiment from its checkpoints")
    ] = False,
) -> None:
    """Train ALGORITHM as a Ray Tune job on the current Ray (local unless RAY_ADDRESS is set)."""
    from service import training

    job = spec_from_options(
        algorithm,
        spec,
        env,
        set_,
        env_set,
        {
            "iterations": stop_iters,
            "env_steps": stop_timesteps,
            "return_mean": stop_return,
            "seconds": stop_seconds,
        },
        seed,
    )
    # A str, not a Path: Path("s3://bucket/x") would collapse to the local path "s3:/bucket/x".
    if resume and "://" not in out and not (Path(out) / name).exists():
        raise UsageError(f"nothing to resume at {Path(out) / name}")
    logging.getLogger("ray").setLevel(logging.WARNING)
    with ProgressDisplay() as display:
        summary = training.train(
            job,
            out_dir=out,
            name=name,
            resume=resume,
            callbacks=[training.ProgressCallback(display.update)],
        )
    failed = [t for t in summary.trials if t.status == "ERROR"]
    # Plain lines (never wrapped): scripts and tests read these paths back.
    sys.stdout.write(f"results: {summary.experiment_path}\n")
    sys.stdout.write(f"best checkpoint: {summary.best_checkpoint}\n")
    if failed:
        raise fail(f"{len(failed)} trial(s) failed; see {failed[0].path}", code=1)


@app.command()
@guarded
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint directory")],
    episodes: Annotated[int, typer.Option(min=1, max=10_000, help="Episodes to play")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first episode")] = 0,
    epsilon: Annotated[float, typer.Option(min=0.0, max=1.0, help="Random-action rate")] = 0.0,
    video: Annotated[Path | None, typer.Option(help="Write an MP4 of the first episode")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Play a checkpoint's greedy policy and print its score."""
    from algorithms.evaluation import evaluate as run_evaluation

    if not checkpoint.exists():
        raise UsageError(f"no such checkpoint: {checkpoint}")
    result = run_evaluation(checkpoint, episodes=episodes, seed=seed, epsilon=epsilon, video=video)
    if as_json:
        keys = {"episodes", "return_mean", "return_std", "length_mean", "returns", "video"}
        console.print_json(data=result.model_dump(include=keys))
        return
    console.print(
        f"{result.env}: return {result.return_mean:.2f} ± {result.return_std:.2f} over "
        f"{result.episodes} episodes, length {result.length_mean:.1f}",
        markup=False,
    )


@app.command("algorithms")
def list_algorithms() -> None:
    """List the algorithms and what they train on."""
    import algorithms

    table = Table("name", "book", "default env", "envs", "summary")
    for entry in algorithms.ALGORITHMS.values():
        table.add_row(
            entry.name, entry.book_section, entry.default_env, ", ".join(entry.envs), entry.summary
        )
    console.print(table)


@app.command("envs")
def list_envs() -> None:
    """List the environment ids."""
    import gymnasium as gym

    import envs

    table = Table("id", "observation space", "action space")
    for env_id in envs.ENV_IDS:
        spec = gym.spec(env_id)
        try:
            env = envs.make(env_id)
            table.add_row(env_id, str(env.observation_space), str(env.action_space))
            env.close()
        except Exception as error:  # noqa: BLE001 - listing must survive one broken env
            table.add_row(env_id, f"unavailable: {error}", str(spec.entry_point))
    console.print(table)


from service import cli_client  # noqa: E402 - the service commands (serve, submit, ...)

cli_client.register(app)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Tune's newer console output ignores verbose=0; rldojo draws its own progress instead.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    app()


if __name__ == "__main__":
    main()
