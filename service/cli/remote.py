"""The `rldojo` commands that run or talk to the service, all through the SDK (`service.client`).

    rldojo serve [--host H] [--port P]        rldojo stop-head
    rldojo submit q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --follow
    rldojo jobs | status ID | logs ID -f | stop ID | resume ID | delete ID | checkpoints ID
    rldojo pull ID --checkpoint best --out ckpt/
    rldojo eval ID --episodes 10 --video run.mp4
    rldojo plot ID|RESULTS_DIR --out curve.png

The server and token come from `--url`/`--token` or `RLDOJO_URL`/`RLDOJO_TOKEN`. These commands
import only httpx and pydantic (not Ray, torch or RLlib), so they start in a fraction of a second.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from service.cli.common import (
    AsJson,
    Env,
    EnvSets,
    Epsilon,
    EvalProtocol,
    Game,
    ProtocolName,
    Seed,
    Sets,
    SpecFile,
    StopIters,
    StopReturn,
    StopSeconds,
    StopTimesteps,
    Token,
    Url,
    UsageError,
    err,
    fail,
    guarded,
    out,
    score_line,
    spec_body,
    writable_dir,
    write_json,
)

if TYPE_CHECKING:
    from service.client import Client

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


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (RLDOJO_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RLDOJO_PORT)")] = None,
) -> None:
    """Run the HTTP service (starts or re-joins the embedded Ray head unless RLDOJO_RAY_ADDRESS).

    The embedded head outlives the service, so jobs keep running across restarts; `rldojo
    stop-head` stops it.
    """
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from service.main import create_app
    from service.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to Ray's dashboard
    overrides: dict[str, Any] = {"host": host, "port": port}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        settings.check_bind()
        app = create_app(settings)
    except (ValueError, OSError, SQLAlchemyError) as error:  # storage root or database unusable
        raise fail(str(error)) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    if settings.ray_address is None:
        err.print(
            "the embedded Ray head keeps running (jobs go on); `rldojo stop-head` stops it",
            markup=False,
        )


@guarded
def stop_head() -> None:
    """Stop the embedded Ray head of this data directory (RLDOJO_DATA_DIR) and its jobs."""
    from service.cluster.head import stop_embedded_head
    from service.settings import Settings

    settings = Settings()
    if stop_embedded_head(settings):
        out.print(f"stopped the embedded Ray head of {settings.data_dir}", markup=False)
    else:
        out.print(f"no embedded Ray head runs for {settings.data_dir}", markup=False)


@guarded
def submit(
    algorithm: Annotated[str, typer.Argument(help="Algorithm name (rldojo algorithms)")],
    env: Env = None,
    set_: Sets = None,
    env_set: EnvSets = None,
    stop_iters: StopIters = None,
    stop_timesteps: StopTimesteps = None,
    stop_return: StopReturn = None,
    stop_seconds: StopSeconds = None,
    seed: Seed = None,
    spec: SpecFile = None,
    priority: Annotated[
        str | None, typer.Option(help="low, normal or high: the queue's order")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the job")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable)")] = None,
    shared: Annotated[
        bool, typer.Option("--shared", help="Let every user read, compare and pull it")
    ] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show live progress")] = False,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit a training job; prints its id (with --follow, live progress until it ends)."""
    stops = (stop_iters, stop_timesteps, stop_return, stop_seconds)
    body = spec_body(algorithm, spec, env, set_, env_set, stops, seed)
    metadata = {"priority": priority, "name": name, "tags": tag or None, "shared": shared or None}
    body.update({key: value for key, value in metadata.items() if value is not None})
    with client_for(url, token) as client:
        job = client.submit(body)
        if as_json:
            write_json(job.model_dump(mode="json"))
        else:
            out.print(job.id, markup=False, highlight=False)
        if follow:
            _follow(client, job.id)


def _follow(client: Client, job_id: str) -> None:
    live = sys.stderr.isatty()
    for row in client.follow_metrics(job_id):
        line = progress_line(row)
        err.print(f"\r{line}" if live else line, end="" if live else "\n", markup=False)
    job = client.job(job_id)
    err.print(f"\n{job_id} {job.status} {job.message}".rstrip(), markup=False, highlight=False)
    if job.status != "SUCCEEDED":
        raise typer.Exit(1)


@guarded
def jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    algorithm: Annotated[str | None, typer.Option(help="Only this algorithm's")] = None,
    env: Annotated[str | None, typer.Option(help="Only jobs on this env")] = None,
    game: Game = None,
    tag: Annotated[str | None, typer.Option(help="Only jobs with this tag")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner's shared jobs")] = None,
    shared: Annotated[bool, typer.Option("--shared", help="Also others' shared jobs")] = False,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List your jobs, newest first (full ids, never cut; queued ones with their place)."""
    with client_for(url, token) as client:
        found = client.jobs(
            status.upper() if status else None,
            algorithm=algorithm,
            env=env,
            tag=tag,
            owner=owner,
            shared=shared,
            game=game,
        )
    if as_json:
        write_json([job.model_dump(mode="json") for job in found])
        return
    table = Table(box=None)
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True)
    for name in ("name", "algorithm", "env", "game", "attempts", "created", "message"):
        table.add_column(name, overflow="fold")
    for job in found:
        place = f" #{job.queue_position}" if job.queue_position else ""
        table.add_row(
            job.id,
            job.status.value + place,
            job.name or "",
            str(job.spec.get("algorithm", "")),
            str(job.spec.get("env", "")),
            job.game or "",
            str(job.attempts),
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            job.message.splitlines()[0] if job.message else "",
        )
    out.print(table)


@guarded
def status(job_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """A job's status (with the reason it failed, in one line), latest metrics and best trial."""
    with client_for(url, token) as client:
        job = client.job(job_id)
    if as_json:
        write_json(job.model_dump(mode="json"))
        return
    spec = job.spec
    lines = [
        f"{job.id}  {job.status.value}  {spec.get('algorithm')} on {spec.get('env')}"
        + (f" ({job.game})" if job.game else ""),
        f"attempts {job.attempts}, created {job.created_at:%Y-%m-%d %H:%M:%S}",
    ]
    if job.message:
        lines.append(f"message: {job.message}")
    if job.latest_metrics:
        lines.append(f"latest: {progress_line(job.latest_metrics, with_trial=False)}")
    if job.best_trial:
        lines.append(
            f"best trial: {job.best_trial.trial_id} return {job.best_trial.return_mean:.2f}"
        )
    lines.append(f"checkpoints: {job.checkpoints or 0}")
    for line in lines:
        out.print(line, markup=False, highlight=False)


@guarded
def logs(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """A job's driver logs (every attempt's)."""
    with client_for(url, token) as client:
        if not follow:
            sys.stdout.write(client.logs(job_id))
            return
        for line in client.follow_logs(job_id):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


@guarded
def stop(
    job_id: str,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for STOPPED (0: answer at once)")
    ] = 60.0,
    url: Url = None,
    token: Token = None,
) -> None:
    """Stop a job: STOPPED once its driver is gone; still STOPPING means stop again to force it."""
    with client_for(url, token) as client:
        job = client.stop(job_id, wait_s=wait)
    out.print(f"{job.id} {job.status.value}", markup=False, highlight=False)


@guarded
def resume(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show live progress")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Continue a stopped, failed or lost job from its last checkpoint."""
    with client_for(url, token) as client:
        job = client.resume(job_id)
        out.print(f"{job.id} {job.status.value}", markup=False, highlight=False)
        if follow:
            _follow(client, job_id)


@guarded
def delete(
    job_id: str,
    purge: Annotated[bool, typer.Option(help="Also delete its results and checkpoints")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Delete a finished job's record (with --purge, its files too)."""
    with client_for(url, token) as client:
        client.delete(job_id, purge=purge)
    out.print(f"deleted {job_id}" + (" and its files" if purge else ""), markup=False)


@guarded
def checkpoints(job_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """A job's checkpoints: id, iteration, env steps and mean return when written."""
    with client_for(url, token) as client:
        found = client.checkpoints(job_id)
    if as_json:
        write_json([c.model_dump(mode="json") for c in found])
        return
    table = Table(box=None)
    table.add_column("id", no_wrap=True, min_width=18)
    for name in ("iteration", "env steps", "return"):
        table.add_column(name, justify="right")
    for c in found:
        value = f"{c.return_mean:.2f}" if c.return_mean is not None else "-"
        table.add_row(c.id, str(c.iteration), str(c.env_steps), value)
    out.print(table)


@guarded
def pull(
    job_id: Annotated[str | None, typer.Argument(help="A job id (or use --best-for)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to unpack it")] = Path("."),
    checkpoint: Annotated[str, typer.Option(help="A checkpoint id or best")] = "best",
    best_for: Annotated[
        str | None, typer.Option(help="An env id: the leaderboard's top checkpoint for it")
    ] = None,
    game: Annotated[
        str | None, typer.Option(help="With --best-for: the top checkpoint for this ALE game")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Download a checkpoint and unpack it; prints the folder `rldojo evaluate` takes."""
    if (job_id is None) == (best_for is None):
        raise UsageError("give a JOB_ID or --best-for ENV")
    if game is not None and best_for is None:
        raise UsageError("--game goes with --best-for ENV")
    writable_dir(out_dir, "--out")
    with client_for(url, token) as client:
        if best_for is not None:
            top = client.leaderboard(best_for, limit=500, game=game)
            games = {entry.game for entry in top}
            if len(games) > 1:
                names = ", ".join(sorted(map(str, games)))
                raise UsageError(f"{best_for} has several games ({names}): name one with --game")
            if not top:
                which = f"{best_for} ({game})" if game else best_for
                raise UsageError(f"no evaluated checkpoint for {which} yet")
            job_id, checkpoint = top[0].job_id, top[0].checkpoint_id
        assert job_id is not None
        folder = client.download(job_id, checkpoint, out_dir)
    out.print(str(folder), markup=False, highlight=False)


@guarded
def eval_(
    job_id: str,
    checkpoint: Annotated[str, typer.Option(help="A checkpoint id or best")] = "best",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first episode")] = 0,
    video: Annotated[Path | None, typer.Option(help="Save an MP4 of the first episode")] = None,
    protocol: EvalProtocol = ProtocolName.book,
    epsilon: Epsilon = None,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Evaluate a job's checkpoint on the cluster under a protocol and print its score."""
    if video is not None:
        writable_dir(video.parent, "--video")
    with client_for(url, token) as client:
        started = client.evaluate(
            job_id, checkpoint, episodes, seed, video is not None, protocol.value, epsilon
        )
        done = client.wait_evaluation(started.id)
        if done.status != "SUCCEEDED":
            raise fail(f"evaluation {done.status.value}: {done.message}", code=1)
        if video is not None:
            client.video(done.id, video)
    if as_json:
        write_json(done.model_dump(mode="json"))
        return
    out.print(score_line(done), markup=False)
    if video is not None:
        out.print(f"video: {video}", markup=False)


@guarded
def plot(
    sources: Annotated[
        list[str], typer.Argument(help="Job ids (overlaid), or one results directory here")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The PNG to write")] = Path("curve.png"),
    metric: Annotated[str, typer.Option(help="Metric on the y axis")] = RETURN_MEAN,
    x: Annotated[str, typer.Option("--x", help="Metric on the x axis")] = ENV_STEPS,
    secondary: Annotated[
        str | None, typer.Option(help="Another metric on a right-hand axis, e.g. a loss")
    ] = None,
    as_json: AsJson = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Draw learning curves (every trial, raw and smoothed) as a PNG, like the API's curve.png.

    SOURCES are job ids (read through the API; several are overlaid, each trial named by its
    job) or one directory `rldojo train --out` wrote.
    """
    from dataclasses import asdict

    from service import plots

    folder = Path(sources[0])
    if len(sources) == 1 and folder.is_dir():
        rows, title = _local_rows(folder), str(folder)
    elif any("/" in source or source.startswith(".") for source in sources):
        missing = next(s for s in sources if "/" in s or s.startswith("."))
        raise UsageError(f"no such results directory: {missing}")
    else:
        rows, title = _job_rows(sources, url, token)
    writable_dir(out_file.parent, "--out")
    try:
        drawn = plots.learning_curve(
            rows, out_file, metric=metric, x=x, title=title, secondary=secondary
        )
    except ValueError as error:
        raise fail(str(error), code=1) from None
    if as_json:
        write_json({"png": str(out_file), "curves": [asdict(c) for c in drawn]})
        return
    points = sum(len(c.y) for c in drawn)
    out.print(f"{out_file}: {len(drawn)} trial(s), {points} points", markup=False)


def _job_rows(
    job_ids: list[str], url: str | None, token: str | None
) -> tuple[list[dict[str, Any]], str]:
    """The jobs' rows (each trial named `<job>/<trial>` when there are several) and a title."""
    from service import plots

    rows: list[dict[str, Any]] = []
    with client_for(url, token) as client:
        for job_id in job_ids:
            label = client.job(job_id).name or job_id
            for row in client.metrics(job_id):
                if len(job_ids) > 1:
                    row["trial_id"] = f"{label}/{row.get('trial_id')}"
                rows.append(row)
        title = (
            plots.job_title(job_ids[0], client.job(job_ids[0]).spec)
            if len(job_ids) == 1
            else f"{len(job_ids)} jobs: " + ", ".join(job_ids)
        )
    return rows, title


def _local_rows(folder: Path) -> list[dict[str, Any]]:
    """Every trial's rows under a results directory: an experiment, a directory of
    experiments (`rldojo train --out`), or one trial's directory."""
    from service.jobdir import JobDirectory

    folder = folder.resolve()
    if (folder / "result.json").is_file():  # one trial
        rows = JobDirectory.open(str(folder.parent)).trial_rows(str(folder))
        return [{**row, "trial_id": row.get("trial_id", folder.name)} for row in rows]
    experiments = [folder, *sorted(path for path in folder.iterdir() if path.is_dir())]
    return [row for path in experiments for row in JobDirectory.open(str(path)).rows()]


def register(app: typer.Typer) -> None:
    """Add the service commands to the `rldojo` app."""
    app.command()(serve)
    app.command("stop-head")(stop_head)
    app.command()(submit)
    app.command()(jobs)
    app.command()(status)
    app.command()(logs)
    app.command()(stop)
    app.command()(resume)
    app.command()(delete)
    app.command()(checkpoints)
    app.command()(pull)
    app.command("eval")(eval_)
    app.command()(plot)
