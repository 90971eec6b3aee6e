"""What every `rldojo` command shares: output, one-line errors, and the spec built from options.

Nothing here imports Ray, torch or RLlib: every command starts in a fraction of a second and
loads those only when it trains, evaluates or serves.
"""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from service.client import Client

T = TypeVar("T")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Url = Annotated[str | None, typer.Option("--url", envvar="RLDOJO_URL", help="Server URL")]
Token = Annotated[str | None, typer.Option("--token", envvar="RLDOJO_TOKEN", help="Bearer token")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table or text")]
# The options every command that builds a job spec takes (`train` locally, `submit` remotely).
Env = Annotated[str | None, typer.Option(help="Env id (rldojo envs)")]
Sets = Annotated[
    list[str] | None, typer.Option("--set", help="Hyperparameter key=value (value as JSON)")
]
EnvSets = Annotated[
    list[str] | None, typer.Option("--env-set", help="env_config key=value (value as JSON)")
]
StopIters = Annotated[int | None, typer.Option(help="Stop after N iterations")]
StopTimesteps = Annotated[int | None, typer.Option(help="Stop after N env steps")]
StopReturn = Annotated[float | None, typer.Option(help="Stop at this mean return")]
StopSeconds = Annotated[float | None, typer.Option(help="Stop after S seconds")]
Seed = Annotated[int | None, typer.Option(help="Seed for envs, torch and numpy")]
SpecFile = Annotated[Path | None, typer.Option("--spec", help="Start from a job spec JSON file")]


# How `evaluate` (here) and `eval` (on the cluster) play their episodes.
class ProtocolName(enum.StrEnum):
    """The evaluation protocols (`algorithms.evaluation.PROTOCOLS`), for typer's choice list."""

    book = "book"
    standard = "standard"


EvalProtocol = Annotated[
    ProtocolName,
    typer.Option(
        help="book: the env as trained; standard (ALE games): sticky actions 0.25, frame skip 4, "
        "108,000-frame cap, whole games, raw score, epsilon 0.05 unless --epsilon",
    ),
]
Epsilon = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="Random-action rate (default: the protocol's, 0 or 0.05)"),
]
Game = Annotated[str | None, typer.Option(help="Only this ALE game (Pong, ALE/Pong-v5)")]


def score_line(result: Any) -> str:
    """One line for an evaluation's score: mean, spread, protocol, human-normalized score."""
    line = (
        f"return {result['return_mean']:.2f} ± {result['return_std']:.2f} over "
        f"{result['episodes']} episodes, length {result['length_mean']:.1f}"
    )
    if result["protocol"]:
        line += f"; {result['protocol']} protocol, epsilon {result['epsilon']:g}"
    if result["human_normalized"] is not None:
        line += f"; human-normalized {result['human_normalized']:.3f}"
    return line


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def megabytes(size: int) -> str:
    """A byte count as a person reads it: 0.05 MB, 6.4 MB, 240 MB."""
    value = size / 1e6
    return (
        f"{value:.2f} MB" if value < 1 else f"{value:.1f} MB" if value < 100 else f"{value:.0f} MB"
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on one line of stderr; raise the returned Exit."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    err.print(f"error: {first}", markup=False, highlight=False)
    return typer.Exit(code)


def guarded(command: Callable[..., T]) -> Callable[..., T]:
    """Turn every error a user can cause into one line on stderr and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except UsageError as error:
            raise fail(str(error)) from None
        except FileNotFoundError as error:
            raise fail(f"no such file or directory: {error.filename or error}") from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise fail(f"{where}{error.strerror or error}") from None
        except Exception as error:
            known = _known_error(error)
            if known is None:
                raise
            raise fail(known[0], known[1]) from None

    return wrapper


def _known_error(error: Exception) -> tuple[str, int] | None:
    """The one-line message and exit code of an error class a user can cause, else None.

    The classes are looked up by name in modules already loaded, so that checking for them
    never imports Ray (the spec and checkpoint errors live beside RLlib code).
    """
    name = type(error).__name__
    if name in ("SpecError", "CheckpointError", "UnknownAlgorithmError"):
        return str(error), 2
    if name == "APIError":
        return str(error), 1
    if name in ("ConnectError", "ReadTimeout", "ConnectTimeout", "RemoteProtocolError"):
        return f"cannot reach the server: {error}", 1
    return None


def parse_assignments(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """`["gamma=0.9", "traps=[[1,2]]"]` -> {"gamma": 0.9, "traps": [[1, 2]]}.

    A value is JSON; a bare word that is not JSON is a string (`game=ALE/Pong-v5`), but a value
    that starts like JSON (a bracket, a brace, a quote) and does not parse is an error.

    Example:
        >>> parse_assignments(["alpha=0.1", "game=Pong"], "--set")
        {'alpha': 0.1, 'game': 'Pong'}
    """
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects key=value, got {pair!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError as error:
            if raw.strip()[:1] in ("[", "{", '"'):
                raise UsageError(f"{option} {key.strip()}: not valid JSON ({error.msg})") from None
            values[key.strip()] = raw  # a bare word is a string
    return values


def read_spec_file(path: Path) -> dict[str, Any]:
    """A job spec file's JSON object."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a JSON object (a job spec), not {type(data).__name__}")
    return data


STOP_KEYS = ("iterations", "env_steps", "return_mean", "seconds")  # --stop-iters ... --stop-seconds


def spec_body(
    algorithm: str | None,
    spec_file: Path | None,
    env: str | None,
    sets: list[str] | None,
    env_sets: list[str] | None,
    stops: tuple[int | None, int | None, float | None, float | None],
    seed: int | None,
) -> dict[str, Any]:
    """The one builder of a job spec (as JSON) from command-line options; the options win over
    the file's values. `stops` are --stop-iters, --stop-timesteps, --stop-return and
    --stop-seconds. Validation is the spec's (locally) or the server's (remotely)."""
    stop = dict(zip(STOP_KEYS, stops, strict=True))
    if spec_file is not None:
        data = read_spec_file(spec_file)
    elif algorithm is not None:
        data = {}
    else:
        raise UsageError("give an ALGORITHM or --spec FILE")
    if algorithm is not None:
        data["algorithm"] = algorithm
    if env is not None:
        data["env"] = env
    for field, values in (
        ("config", parse_assignments(sets, "--set")),
        ("env_config", parse_assignments(env_sets, "--env-set")),
        ("stop", {k: v for k, v in stop.items() if v is not None}),
    ):
        if values:
            if not isinstance(data.get(field, {}), dict):
                raise UsageError(f"the spec's {field} must be a JSON object")
            data[field] = {**data.get(field, {}), **values}
    if seed is not None:
        data["seed"] = seed
    return data


def writable_dir(path: Path, option: str) -> Path:
    """`path` made (with its parents) and checked writable; a one-line error otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option} {path}: {error.strerror or error}") from None
    probe = path / ".rldojo-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"{option} {path}: {error.strerror or error}") from None
    return path


def write_json(data: Any) -> None:
    """JSON on stdout, one document, never wrapped (scripts read it)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# Metric keys (as `algorithms.common.metrics` names them), repeated here so that following a
# job never imports the algorithms package.
ITERATION = "training_iteration"
ENV_STEPS = "num_env_steps_sampled_lifetime"
RETURN_MEAN = "env_runners/episode_return_mean"
STEPS_PER_SECOND = (
    "env_runners/num_env_steps_sampled_lifetime_throughput/throughput_since_last_reduce"
)


def client_for(url: str | None, token: str | None) -> Client:
    """The SDK client for the server `--url` / `RLDOJO_URL` names."""
    from service.client import Client

    return Client(url, token)


def progress_line(row: dict[str, Any], *, with_trial: bool = True, with_speed: bool = False) -> str:
    """One result row as `iter 3  steps 512  return 1.25` (the CLI's and the logs' line)."""

    def number(key: str, fmt: str) -> str:
        value = row.get(key)
        return format(value, fmt) if isinstance(value, int | float) else "-"

    line = (
        f"iter {row.get(ITERATION, '-')}  steps {number(ENV_STEPS, '.0f')}  "
        f"return {number(RETURN_MEAN, '.2f')}"
    )
    if with_speed:
        line += f"  steps/s {number(STEPS_PER_SECOND, '.0f')}"
    return f"{row.get('trial_id', '')}  {line}" if with_trial else line
