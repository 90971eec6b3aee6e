"""Time to score: train one ALE game with rldojo's `dqn` for a wall-clock budget, then score it.

One command that does what a user does (issue 23 item 3): `rldojo train` (a subprocess, the job
path every local run takes) on `rldojo/Atari-v0` with the `fast_atari` preset and a `seconds`
stop, then `rldojo evaluate --protocol standard --json` (two subprocesses, at once) on the final
and the best checkpoint. It records:

- the learning curve in minutes and env steps (each iteration's mean return, clipped rewards as
  trained; Pong's rewards are +-1 either way);
- minutes and env steps to a mean return of 18 (Pong) or 100 and 300 (Breakout);
- the final and best checkpoints' standard-protocol scores (Machado et al. 2018: sticky
  actions, whole games, raw score) and their human-normalized scores;
- env steps/s and learner updates/s over the run.

Outputs: `<out>.json` (through `bench/records.report`), `<out>.png` (`service/plots.py`) and
`<out>.md` (the table). `--toy` trains on tiny settings (CPU, seconds, the test's mode).

Usage:
    python bench/atari_time_to_score.py --game pong --minutes 7 --gpus 1 --env-runners 12
    python bench/atari_time_to_score.py --game pong --minutes 20 --env-runners 1   # 2 CPUs
    python bench/atari_time_to_score.py --toy --minutes 0.3 --out /tmp/toy
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import records  # noqa: E402

# The console script where rldojo is installed; its entry point where the checkout is only on
# PYTHONPATH (the GPU machine: gpu_session.sh).
_SCRIPT = Path(sys.executable).with_name("rldojo")
RLDOJO = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'rldojo'; from service.cli import main; main()",
    ]
)
TARGETS = {"pong": (18.0,), "breakout": (100.0, 300.0)}
RETURN = "env_runners/episode_return_mean"
ENV_STEPS = "num_env_steps_sampled_lifetime"
UPDATES = "learners/default_policy/num_gradient_updates_lifetime"
SECONDS = "time_total_s"
# Tiny settings: a CPU learns nothing in seconds, but every step of the bench runs.
TOY_CONFIG = {
    "replay_capacity": 2_000,
    "learning_starts": 300,
    "train_batch_size_per_learner": 16,
    "updates_per_env_step": 0.25,
    "num_envs_per_env_runner": 4,
    "rollout_fragment_length": 16,
    "epsilon_decay_steps": 1_000,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="pong", help="an ALE game (pong, breakout, ...)")
    parser.add_argument("--minutes", type=float, default=7.0, help="training budget")
    parser.add_argument("--preset", default="fast_atari")
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--gpus", type=float, default=0.0, help="GPUs for the learner")
    parser.add_argument("--episodes", type=int, default=10, help="standard-protocol episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=25, help="iterations")
    parser.add_argument("--set", action="append", default=[], help="extra dqn key=value")
    parser.add_argument("--toy", action="store_true", help="tiny settings (the test's mode)")
    parser.add_argument("--work", help="where `rldojo train` writes (default: a temp dir)")
    parser.add_argument(
        "--out", help="output prefix (default bench/results/atari_time_to_score_<game>)"
    )
    parser.add_argument("--note", default="", help="recorded with the result")
    parser.add_argument("--replot", help="redraw the PNG and markdown of a recorded JSON; no run")
    args = parser.parse_args(argv)
    args.out = args.out or str(ROOT / "bench" / "results" / f"atari_time_to_score_{args.game}")
    return args


def job_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The job spec `rldojo train --spec` runs."""
    config: dict[str, Any] = {"preset": args.preset, "checkpoint_replay": False}
    env_config: dict[str, Any] = {"game": args.game}
    if args.toy:
        config.update(TOY_CONFIG)
        env_config["max_episode_steps"] = 100  # games end, so the curve has returns
    for pair in args.set:
        key, _, value = pair.partition("=")
        config[key] = json.loads(value)
    return {
        "algorithm": "dqn",
        "env": "rldojo/Atari-v0",
        "env_config": env_config,
        "config": config,
        "stop": {"seconds": args.minutes * 60},
        "seed": args.seed,
        "checkpoint": {"every": 2 if args.toy else args.checkpoint_every, "keep": 3},
        "resources": {"env_runners": args.env_runners, "gpus_per_learner": args.gpus},
    }


def train(spec: dict[str, Any], work: Path) -> tuple[Path, float]:
    """Run `rldojo train --spec`; its output goes to ours. The experiment's path, wall seconds."""
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    command = [*RLDOJO, "train", "--spec", str(spec_file), "--out", str(work), "--name", "run"]
    print("$ rldojo " + " ".join(command[len(RLDOJO) :]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return work / "run", time.perf_counter() - start


def evaluate(checkpoint: str, episodes: int, seed: int, frames: int | None) -> dict[str, Any]:
    """`rldojo evaluate --protocol standard --json` on one checkpoint (its own process)."""
    command = [*RLDOJO, "evaluate", checkpoint, "--protocol", "standard"]
    command += ["--episodes", str(episodes), "--seed", str(seed), "--json"]
    if frames is not None:  # the toy's cap, in place of 108,000 frames
        command += ["--max-frames", str(frames)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def curve(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The learning curve: minutes, env steps, mean return, updates, per iteration."""
    points = []
    for row in rows:
        value = row.get(RETURN)
        points.append(
            {
                "minutes": round(float(row.get(SECONDS, 0.0)) / 60, 3),
                "env_steps": int(row.get(ENV_STEPS, 0)),
                "return_mean": value
                if isinstance(value, int | float) and math.isfinite(value)
                else None,
                "updates": int(row.get(UPDATES, 0) or 0),
            }
        )
    return points


def time_to(points: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """Minutes and env steps of the first iteration whose mean return reached `target`."""
    for point in points:
        if point["return_mean"] is not None and point["return_mean"] >= target:
            return {"target": target, "minutes": point["minutes"], "env_steps": point["env_steps"]}
    return None


def summary(points: list[dict[str, Any]], game: str) -> dict[str, Any]:
    """Time to each target, the speeds over the run."""
    last = points[-1] if points else {"minutes": 0.0, "env_steps": 0, "updates": 0}
    seconds = max(last["minutes"] * 60, 1e-9)
    reached = {str(t): time_to(points, t) for t in TARGETS.get(game, ())}
    returns = [p["return_mean"] for p in points if p["return_mean"] is not None]
    return {
        "time_to_score": reached,
        "training_minutes": last["minutes"],
        "env_steps": last["env_steps"],
        "env_steps_per_s": round(last["env_steps"] / seconds, 1),
        "updates": last["updates"],
        "updates_per_s": round(last["updates"] / seconds, 1),
        "best_training_return": max(returns) if returns else None,
    }


def score_checkpoints(experiment: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The standard-protocol scores of the final and the best checkpoint, evaluated at once."""
    from service.jobdir import JobDirectory

    directory = JobDirectory.open(str(experiment))
    kept = directory.checkpoints()
    best = directory.best_checkpoint()
    if not kept or best is None:
        return {}
    final = max(kept, key=lambda c: (c.iteration or -1, c.path))
    chosen = {"final": final, "best": best}
    frames = 400 if args.toy else None  # the toy's 100 steps; else the protocol's 108,000
    distinct = {c.id: c for c in chosen.values()}  # the best is often the final one
    with ThreadPoolExecutor(max_workers=len(distinct)) as pool:
        futures = {
            key: pool.submit(
                evaluate, directory.checkpoint_uri(c), args.episodes, args.seed, frames
            )
            for key, c in distinct.items()
        }
        by_id = {key: future.result() for key, future in futures.items()}
    scores = {name: by_id[c.id] for name, c in chosen.items()}
    return {
        name: {
            "checkpoint": chosen[name].id,
            "iteration": chosen[name].iteration,
            "env_steps": chosen[name].env_steps,
            **{
                k: scores[name].get(k)
                for k in (
                    "return_mean",
                    "return_std",
                    "returns",
                    "length_mean",
                    "human_normalized",
                    "protocol",
                    "epsilon",
                    "seeds",
                )
            },
        }
        for name in chosen
    }


def markdown(record: dict[str, Any]) -> str:
    """The result as a short page: the command, the machine, one table."""
    run, scores = record["run"], record["scores"]
    lines = [
        f"# Time to score: rldojo `dqn` ({record['preset']}) on {record['game']}",
        "",
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine']}  ",
        f"Training budget {record['minutes']:g} min (Tune's `time_total_s`); the whole command "
        f"took {record['wall_seconds']:.0f} s. {record['note']}".rstrip(),
        "",
        "| measure | value |",
        "|---|---|",
    ]
    for target, reached in run["time_to_score"].items():
        value = (
            f"{reached['minutes']:.2f} min, {reached['env_steps']:,} env steps"
            if reached
            else "not reached"
        )
        lines.append(f"| time to a mean return of {float(target):g} | {value} |")
    for name in ("final", "best"):
        score = scores.get(name)
        if score:
            hns = score["human_normalized"]
            lines.append(
                f"| {name} checkpoint ({score['checkpoint']}), standard protocol, "
                f"{len(score['returns'])} episodes, epsilon {score['epsilon']:g} | "
                f"{score['return_mean']:.2f} ± {score['return_std']:.2f}"
                + (f", human-normalized {hns:.3f}" if hns is not None else "")
                + " |"
            )
    lines += [
        f"| env steps (over the run) | {run['env_steps']:,} ({run['env_steps_per_s']:,.0f}/s) |",
        f"| learner updates (over the run) | {run['updates']:,} ({run['updates_per_s']:,.0f}/s) |",
        f"| best training mean return | {run['best_training_return']} |",
        "",
        f"Curve: `{Path(record['png']).name}` (mean return of the iteration's games, as trained).",
        "",
    ]
    return "\n".join(lines)


def plot(points: list[dict[str, Any]], path: Path, title: str) -> bool:
    """The curve against minutes (a PNG); False when no iteration finished a game or where
    matplotlib is missing (the GPU machine: `--replot` draws it later from the JSON)."""
    try:
        import matplotlib  # noqa: F401

        from service.plots import learning_curve
    except ImportError as error:
        print(f"no PNG: {error}", flush=True)
        return False
    rows = [{**p, "trial_id": "run"} for p in points if p["return_mean"] is not None]
    if not rows:
        return False
    learning_curve(
        rows,
        path,
        metric="return_mean",
        x="minutes",
        secondary="env_steps",
        xlabel="minutes of training",
        ylabel="mean return of the iteration's games",
        title=title,
    )
    return True


def _command(argv: list[str] | None) -> str:
    return "python " + " ".join(["bench/atari_time_to_score.py", *(argv or sys.argv[1:])])


def replot(path: Path) -> dict[str, Any]:
    """The PNG and the markdown of a recorded run, drawn again beside its JSON."""
    record: dict[str, Any] = json.loads(path.read_text())
    png = path.with_suffix(".png")
    title = f"rldojo dqn {record['preset']}, {record['game']}, {record['minutes']:g} min"
    record["png"] = png.name if plot(record["curve"], png, title) else None
    path.with_suffix(".md").write_text(markdown(record))
    print(f"wrote {png} and {path.with_suffix('.md')}")
    return record


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.replot:
        return replot(Path(args.replot))
    started = time.perf_counter()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rldojo-tts-") as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        experiment, _ = train(job_spec(args), work)
        from service.jobdir import JobDirectory

        points = curve(JobDirectory.open(str(experiment)).rows())
        # The curve is kept even if the evaluations never end (a device call's time limit).
        partial = {"command": _command(argv), "game": args.game, "run": summary(points, args.game)}
        Path(args.out).with_suffix(".partial.json").write_text(
            json.dumps({**partial, "curve": points}, indent=1)
        )
        scores = score_checkpoints(experiment, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    title = f"rldojo dqn {args.preset}, {args.game}, {args.minutes:g} min"
    record = {
        "command": _command(argv),
        "machine": records.machine(),
        "note": args.note,
        "game": args.game,
        "preset": args.preset,
        "minutes": args.minutes,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "work")},
        "spec": job_spec(args),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "run": summary(points, args.game),
        "scores": scores,
        "png": png.name if plot(points, png, title) else None,
        "curve": points,
    }
    out.with_suffix(".md").write_text(markdown(record))
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    ok = bool(points) and bool(scores)
    records.report(record, str(out.with_suffix(".json")), as_test=False, ok=ok)
    return record


if __name__ == "__main__":
    main()
