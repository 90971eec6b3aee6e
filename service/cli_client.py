"""The `rldojo` commands that run or talk to the service, all through `service.client.Client`.

    rldojo serve [--host H] [--port P]
    rldojo submit q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --follow
    rldojo jobs | rldojo status ID | rldojo logs ID -f | rldojo stop ID | rldojo resume ID
    rldojo pull ID --checkpoint best --out ckpt/
    rldojo eval ID --episodes 10 --video run.mp4
    rldojo plot ID|RESULTS_DIR --out curve.png

The server and token come from `--url`/`--token` or `RLDOJO_URL`/`RLDOJO_TOKEN`.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from algorithms.common import metrics

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

Url = Annotated[str | None, typer.Option("--url", envvar="RLDOJO_URL", help="Server URL")]
Token = Annotated[str | None, typer.Option("--token", envvar="RLDOJO_TOKEN", help="Bearer token")]


def _client(url: str | None, token: str | None) -> Any:
    from service.client import Client

    return Client(url, token)


def _guard(command: Callable[..., T]) -> Callable[..., T]:
    """API and connection errors become one line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        import httpx

        from service.client import APIError

        try:
            return command(*args, **kwargs)
        except APIError as error:
            err.print(f"error: {error}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        except httpx.HTTPError as error:
            err.print(f"error: cannot reach the server: {error}", markup=False)
            raise typer.Exit(1) from None

    return wrapper


def _line(row: dict[str, Any]) -> str:
    def number(key: str, fmt: str) -> str:
        value = row.get(key)
        return format(value, fmt) if isinstance(value, int | float) else "-"

    return (
        f"{row.get('trial_id', '')}  iter {row.get(metrics.ITERATION, '-')}  "
        f"steps {number(metrics.ENV_STEPS, '.0f')}  "
        f"return {number(metrics.EPISODE_RETURN_MEAN, '.2f')}"
    )


def _values(pairs: list[str] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep:
            err.print(f"error: expected key=value, got {pair!r}", markup=False)
            raise typer.Exit(2)
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (RLDOJO_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RLDOJO_PORT)")] = None,
) -> None:
    """Run the HTTP service (starts or re-joins the embedded Ray head unless RLDOJO_RAY_ADDRESS)."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from service.main import create_app
    from service.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        settings.check_bind()
    except ValueError as error:
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(2) from None
    try:
        app = create_app(settings)
    except (ValueError, OSError, SQLAlchemyError) as error:  # storage root or database unusable
        err.print(f"error: {str(error).splitlines()[0]}", markup=False)
        raise typer.Exit(2) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


@_guard
def submit(
    algorithm: Annotated[str, typer.Argument(help="Algorithm name (rldojo algorithms)")],
    env: Annotated[str | None, typer.Option(help="Env id")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="config key=value")] = None,
    env_set: Annotated[list[str] | None, typer.Option("--env-set", help="env key=value")] = None,
    stop_iters: Annotated[int | None, typer.Option(help="Stop after N iterations")] = None,
    stop_timesteps: Annotated[int | None, typer.Option(help="Stop after N env steps")] = None,
    stop_return: Annotated[float | None, typer.Option(help="Stop at this mean return")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed")] = None,
    spec: Annotated[Path | None, typer.Option(help="Start from a job spec JSON file")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show live progress")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit a training job; prints its id (with --follow, a live progress line until it ends)."""
    body: dict[str, Any] = json.loads(spec.read_text()) if spec else {}
    body["algorithm"] = algorithm
    if env:
        body["env"] = env
    body.setdefault("config", {}).update(_values(set_))
    body.setdefault("env_config", {}).update(_values(env_set))
    stop = {"iterations": stop_iters, "env_steps": stop_timesteps, "return_mean": stop_return}
    body.setdefault("stop", {}).update({k: v for k, v in stop.items() if v is not None})
    if seed is not None:
        body["seed"] = seed
    with _client(url, token) as client:
        job = client.submit(body)
        out.print(job["id"], markup=False, highlight=False)
        if follow:
            _follow(client, job["id"])


def _follow(client: Any, job_id: str) -> None:
    live = sys.stderr.isatty()
    for row in client.follow_metrics(job_id):
        if live:
            err.print(f"\r{_line(row)}", end="", markup=False, highlight=False)
        else:
            err.print(_line(row), markup=False, highlight=False)
    job = client.job(job_id)
    err.print(f"\n{job_id} {job['status']} {job.get('message', '')}".rstrip(), markup=False)
    if job["status"] != "SUCCEEDED":
        raise typer.Exit(1)


@_guard
def jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """List your jobs."""
    with _client(url, token) as client:
        table = Table("id", "status", "algorithm", "env", "attempts", "created")
        for job in client.jobs(status):
            spec = job["spec"]
            table.add_row(
                job["id"],
                job["status"],
                spec.get("algorithm", ""),
                str(spec.get("env", "")),
                str(job["attempts"]),
                job["created_at"][:19],
            )
        out.print(table)


@_guard
def status(job_id: str, url: Url = None, token: Token = None) -> None:
    """A job's status, latest metrics, best trial and checkpoints count (JSON)."""
    with _client(url, token) as client:
        out.print_json(data=client.job(job_id))


@_guard
def logs(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """A job's driver logs."""
    with _client(url, token) as client:
        if not follow:
            sys.stdout.write(client.logs(job_id))
            return
        for line in client.follow_logs(job_id):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


@_guard
def stop(job_id: str, url: Url = None, token: Token = None) -> None:
    """Stop a job."""
    with _client(url, token) as client:
        job = client.stop(job_id)
        out.print(f"{job['id']} {job['status']}", markup=False, highlight=False)


@_guard
def resume(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show live progress")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Continue a stopped, failed or lost job from its last checkpoint."""
    with _client(url, token) as client:
        job = client.resume(job_id)
        out.print(f"{job['id']} {job['status']}", markup=False, highlight=False)
        if follow:
            _follow(client, job_id)


@_guard
def pull(
    job_id: str,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to unpack it")],
    checkpoint: Annotated[str, typer.Option(help="A checkpoint id or best")] = "best",
    url: Url = None,
    token: Token = None,
) -> None:
    """Download a checkpoint and unpack it; prints the folder `rldojo evaluate` takes."""
    with _client(url, token) as client:
        folder = client.download(job_id, checkpoint, out_dir)
        out.print(str(folder), markup=False, highlight=False)


@_guard
def eval_(
    job_id: str,
    checkpoint: Annotated[str, typer.Option(help="A checkpoint id or best")] = "best",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first episode")] = 0,
    video: Annotated[Path | None, typer.Option(help="Save an MP4 of the first episode")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Evaluate a job's checkpoint on the cluster and print its score."""
    with _client(url, token) as client:
        started = client.evaluate(job_id, checkpoint, episodes, seed, video is not None)
        done = client.wait_evaluation(started["id"])
        if done["status"] != "SUCCEEDED":
            err.print(f"error: evaluation {done['status']}: {done['message']}", markup=False)
            raise typer.Exit(1)
        out.print(
            f"return {done['return_mean']:.2f} ± {done['return_std']:.2f} over "
            f"{done['episodes']} episodes, length {done['length_mean']:.1f}",
            markup=False,
        )
        if video is not None:
            client.video(done["id"], video)
            out.print(f"video: {video}", markup=False)


@_guard
def plot(
    source: Annotated[str, typer.Argument(help="A job id, or a results directory on this machine")],
    out_file: Annotated[Path, typer.Option("--out", help="The PNG to write")] = Path("curve.png"),
    metric: Annotated[str, typer.Option(help="Metric on the y axis")] = metrics.EPISODE_RETURN_MEAN,
    x: Annotated[str, typer.Option("--x", help="Metric on the x axis")] = metrics.ENV_STEPS,
    secondary: Annotated[
        str | None, typer.Option(help="Another metric on a right-hand axis, e.g. a loss")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plotted points")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Draw a learning curve (every trial, raw and smoothed) as a PNG, like the API's curve.png.

    SOURCE is a job id (read through the API) or a directory `rldojo train --out` wrote.
    """
    from dataclasses import asdict

    from service import plots

    folder = Path(source)
    if folder.is_dir():
        rows, title = _local_rows(folder), str(folder)
    elif "/" in source or source.startswith("."):
        err.print(f"error: no such results directory: {source}", markup=False)
        raise typer.Exit(2)
    else:
        with _client(url, token) as client:
            title = plots.job_title(source, client.job(source)["spec"])
            rows = client.metrics(source)
    try:
        drawn = plots.learning_curve(
            rows, out_file, metric=metric, x=x, title=title, secondary=secondary
        )
    except ValueError as error:
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(data={"png": str(out_file), "curves": [asdict(c) for c in drawn]})
        return
    points = sum(len(c.y) for c in drawn)
    out.print(f"{out_file}: {len(drawn)} trial(s), {points} points", markup=False)


def _local_rows(folder: Path) -> list[dict[str, Any]]:
    """Every trial's rows under a results directory (an experiment, its parent, or a trial)."""
    from service.training import result_rows

    rows = []
    for trial in sorted(path.parent for path in folder.rglob("result.json")):
        for row in result_rows(trial):
            row.setdefault("trial_id", trial.name)
            rows.append(row)
    return rows


def register(app: typer.Typer) -> None:
    """Add the service commands to the `rldojo` app."""
    app.command()(serve)
    app.command()(submit)
    app.command()(jobs)
    app.command()(status)
    app.command()(logs)
    app.command()(stop)
    app.command()(resume)
    app.command()(pull)
    app.command("eval")(eval_)
    app.command()(plot)
