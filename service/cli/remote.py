"""The `rldojo` commands that submit and manage jobs on the service, all through the SDK
(`service.client`); the server's own commands are in `server.py`, a job's results in
`results.py`.

    rldojo submit q_learning --env rldojo/GridWorld-v0 --stop-iters 30 --follow
    rldojo jobs | status ID | trials ID | logs ID -f | stop ID | resume ID | delete ID

The server and token come from `--url`/`--token` or `RLDOJO_URL`/`RLDOJO_TOKEN`. These commands
import only httpx and pydantic (not Ray, torch or RLlib), so they start in a fraction of a second.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from service.cli.common import (
    STOP_KEYS,
    AsJson,
    Env,
    EnvSets,
    Game,
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
    client_for,
    err,
    guarded,
    out,
    progress_line,
    spec_body,
    write_json,
)

if TYPE_CHECKING:
    from service.client import Client


@guarded
def submit(
    algorithm: Annotated[
        str | None, typer.Argument(help="Algorithm name (rldojo algorithms); or --spec FILE")
    ] = None,
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
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Warm start from a job's checkpoint: JOB (its best) or JOB:CHECKPOINT",
        ),
    ] = None,
    keep_replay: Annotated[
        bool, typer.Option("--keep-replay", help="With --from: begin with its replay memory")
    ] = False,
    keep_optimizer: Annotated[
        bool, typer.Option("--keep-optimizer", help="With --from: and its optimizer's state")
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
    if from_ is not None:
        body["from_checkpoint"] = warm_start(from_, keep_replay, keep_optimizer)
    elif keep_replay or keep_optimizer:
        raise UsageError("--keep-replay and --keep-optimizer go with --from JOB")
    with client_for(url, token) as client:
        job = client.submit(body)
        if as_json:
            write_json(job.model_dump(mode="json"))
        else:
            out.print(job.id, markup=False, highlight=False)
        if follow:
            _follow(client, job.id)


def warm_start(source: str, keep_replay: bool, keep_optimizer: bool) -> dict[str, Any]:
    """`--from JOB[:CHECKPOINT]` as the spec's `from_checkpoint`."""
    job, _, checkpoint = source.partition(":")
    if not job:
        raise UsageError("--from takes JOB or JOB:CHECKPOINT")
    return {
        "job": job,
        "checkpoint": checkpoint or "best",
        "keep_replay": keep_replay,
        "keep_optimizer": keep_optimizer,
    }


def _follow(client: Client, job_id: str) -> None:
    live = sys.stderr.isatty()
    for row in client.follow_metrics(job_id):
        line = progress_line(row, with_speed=True)  # how fast it goes, as a local train says
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
        best = job.best_trial
        at = f" at iteration {best.iteration}" if best.iteration is not None else ""
        lines.append(f"best: return {best.return_mean:.2f}{at} (trial {best.trial_id})")
    lines.append(f"checkpoints: {job.checkpoints or 0}")
    for line in lines:
        out.print(line, markup=False, highlight=False)


@guarded
def trials(job_id: str, as_json: AsJson = False, url: Url = None, token: Token = None) -> None:
    """A job's trials, best first (state, hyperparameters, iterations, best return), and the
    perturbations of a PBT job: which trial copied which, when, with which values."""
    with client_for(url, token) as client:
        found = client.trials(job_id)
    if as_json:
        write_json(found.model_dump(mode="json"))
        return
    keys = list(dict.fromkeys(key for trial in found.trials for key in trial.hyperparameters))
    table = Table(box=None)
    for name in ("trial", "state", *keys, "iterations", "return", "best return"):
        table.add_column(name, no_wrap=name in ("trial", "state"))
    for trial in found.trials:
        table.add_row(
            trial.trial_id,
            trial.state,
            *(_value(trial.hyperparameters.get(key)) for key in keys),
            str(trial.iterations),
            _value(trial.return_mean),
            _value(trial.best_return),
        )
    out.print(table if found.trials else "no trials yet")
    for step in found.perturbations:
        values = ", ".join(
            f"{key} {_value(step.from_values.get(key))} -> {_value(value)}"
            for key, value in step.values.items()
        )
        out.print(
            f"iteration {step.iteration}: {step.trial_id} copied {step.copied or '?'}; {values}",
            markup=False,
            highlight=False,
        )


def _value(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
    stop_iters: StopIters = None,
    stop_timesteps: StopTimesteps = None,
    stop_return: StopReturn = None,
    stop_seconds: StopSeconds = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Continue a stopped, failed or lost job from its last checkpoint; with a --stop-*
    option, also a finished one, on to that stop (extend)."""
    stops = (stop_iters, stop_timesteps, stop_return, stop_seconds)
    stop = {key: value for key, value in zip(STOP_KEYS, stops, strict=True) if value is not None}
    with client_for(url, token) as client:
        job = client.resume(job_id, stop=stop or None)
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


def register(app: typer.Typer) -> None:
    """Add the job commands to the `rldojo` app."""
    app.command()(submit)
    app.command()(jobs)
    app.command()(status)
    app.command()(trials)
    app.command()(logs)
    app.command()(stop)
    app.command()(resume)
    app.command()(delete)
