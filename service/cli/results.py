"""The `rldojo` commands that read a job's results through the SDK: its checkpoints, a pulled
checkpoint, a server-side evaluation and its learning curve.

    rldojo checkpoints ID | pull ID --checkpoint best --out ckpt/
    rldojo eval ID --episodes 10 --video run.mp4
    rldojo plot ID|RESULTS_DIR --out curve.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from service.cli.common import (
    ENV_STEPS,
    RETURN_MEAN,
    AsJson,
    Epsilon,
    EvalProtocol,
    ProtocolName,
    Token,
    Url,
    UsageError,
    client_for,
    err,
    fail,
    guarded,
    megabytes,
    out,
    score_line,
    writable_dir,
    write_json,
)


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
    with_replay: Annotated[
        bool,
        typer.Option(
            "--with-replay",
            help="The whole checkpoint, to resume from: replay memory and optimizer state too",
        ),
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Download a checkpoint (its config and weights) and unpack it; prints the folder
    `rldojo evaluate` takes, and on stderr the download's size."""
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
        pulled = client.pull(job_id, checkpoint, out_dir, with_replay=with_replay)
    what = "the whole checkpoint" if with_replay else "weights only; --with-replay for all of it"
    err.print(f"pulled {megabytes(pulled.archive_bytes)} ({what})", markup=False)
    out.print(str(pulled.folder), markup=False, highlight=False)


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
    """Add the results commands to the `rldojo` app."""
    app.command()(checkpoints)
    app.command()(pull)
    app.command("eval")(eval_)
    app.command()(plot)
