"""One call on a GPU machine: rldojo DQN's learner, sampling and end to end on Breakout (issue 13).

Sections, in this order, each recorded with the seconds it took:

1. Raw ALE ceilings: `--runners` processes stepping Breakout with random actions, the
   Gymnasium pipeline in a Python loop (4 games each, the issue's baseline) and ale-py's C++
   `AtariVector` (8 games each).
2. Plain-torch ceilings of one DQN update of the Nature CNN (online and target forward, Huber,
   backward, global-norm clip 10, Adam with `capturable=True`), on data already on the GPU:
   eager at batch 32 and 256, captured as a CUDA graph at batch 32, 64, 128 and 256.
3. Learner updates/s at batch 32, alternating rounds, median: rldojo's DQN learner (CUDA graph,
   the default on a GPU), the same with `cuda_graph=False`, and RLlib's DQN learner (what its
   `training_step` does per update), all on the same GPU, each drawing from its own replay.
4. End to end: rldojo `dqn`, preset "book_breakout" (32 games per EnvRunner, 8-step fragments),
   `--runners` EnvRunners, the GPU learner, epsilon fixed at 0.1 (the network acts for 90 % of
   the steps), sampling overlapped with learning, at 1.0 and 0.25 updates per env step: env
   steps/s and updates/s after the warm-up.

Targets (issue 13, on an H100/H200): learner >= 1,200 updates/s at batch 32; end to end >= 1,000
env steps/s at 1.0 update per env step and >= 4,000 at 0.25.

A deadline (`--budget`, seconds) skips the sections that would not fit; a section that fails is
recorded with its error and the others still run. The record is rewritten after every section.

Usage:
    python bench/gpu_dqn.py                          # on the GPU machine: about 5 minutes
    python bench/gpu_dqn.py --cpu --out /tmp/x.json  # every section, small, on this CPU
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import torch
from torch.nn import functional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import algorithms  # noqa: E402
import envs  # noqa: E402
from algorithms.common.q_network import QNetwork, native_bfloat16  # noqa: E402
from algorithms.dqn_learner import UPDATES_LIFETIME  # noqa: E402
from bench.dqn_breakout_throughput import raw_python_loop, raw_rate, raw_vector  # noqa: E402
from bench.dqn_learners import BREAKOUT, alternate, rldojo_learner, rllib_learner  # noqa: E402

TARGETS = {
    "learner_updates_per_s": 1_200,
    "steps_per_s_at_1.0": 1_000,
    "steps_per_s_at_0.25": 4_000,
}


# ---- 2. plain-torch ceilings ------------------------------------------------------------------


def torch_update_rate(batch: int, graph: bool, seconds: float, device: torch.device) -> float:
    """Updates/s of a plain-torch DQN update on random data that stays on `device`."""
    net = QNetwork((4, 84, 84), 3, hidden_sizes=[512], init="glorot_uniform").to(device)
    target = copy.deepcopy(net).requires_grad_(False)
    cuda = device.type == "cuda"
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1e-7, capturable=cuda, foreach=True)
    obs, next_obs = (torch.randint(0, 256, (batch, 4, 84, 84), device=device) for _ in "ab")
    obs, next_obs = obs.to(torch.uint8), next_obs.to(torch.uint8)
    actions = torch.randint(0, 3, (batch,), device=device)
    rewards = torch.randn(batch, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        q_taken = net(obs).gather(1, actions[:, None]).squeeze(1)
        with torch.no_grad():
            y = rewards + 0.99 * target(next_obs).max(dim=1).values
        functional.huber_loss(q_taken, y).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0, foreach=True)
        optimizer.step()

    run: Callable[[], None] = step
    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        captured = torch.cuda.CUDAGraph()
        with torch.cuda.graph(captured):
            step()
        run = captured.replay
    for _ in range(10):
        run()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            run()
        count += 20
        sync()
    return count / (time.perf_counter() - start)


def ceilings(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    seconds = args.ceiling_seconds
    found = {f"eager_batch_{b}": torch_update_rate(b, False, seconds, device) for b in (32, 256)}
    if device.type == "cuda":
        for b in (32, 64, 128, 256):
            found[f"cuda_graph_batch_{b}"] = torch_update_rate(b, True, seconds, device)
    return {name: round(rate, 1) for name, rate in found.items()}


# ---- 3. learners -----------------------------------------------------------------------------


def learners(args: argparse.Namespace, gpus: int) -> dict[str, Any]:
    contenders = {"rldojo_cuda_graph": rldojo_learner(BREAKOUT, gpus)}
    if gpus:
        contenders["rldojo_eager"] = rldojo_learner(BREAKOUT, gpus, cuda_graph=False)
    contenders["rllib"] = rllib_learner(BREAKOUT, gpus)
    try:
        rates = alternate(contenders, args.learner_updates, args.learner_rounds, threads=1)
    finally:
        for algo, _ in contenders.values():
            algo.stop()
    medians = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    return {
        "batch_size": 32,
        "updates_per_round": args.learner_updates,
        "updates_per_s_median": medians,
        "rldojo_over_rllib": round(medians["rldojo_cuda_graph"] / medians["rllib"], 2),
        "rounds_updates_per_s": {n: [round(x, 1) for x in v] for n, v in rates.items()},
    }


# ---- 4. end to end ---------------------------------------------------------------------------


def end_to_end(args: argparse.Namespace, gpus: int, ratio: float) -> dict[str, Any]:
    config = (
        algorithms.build(
            "dqn",
            BREAKOUT,
            {
                "replay_capacity": 100_000,
                "learning_starts": args.learning_starts,
                "updates_per_env_step": ratio,
                "epsilon_initial": 0.1,
                "epsilon_final": 0.1,
                "overlap_sampling": True,
            },
        )
        .env_runners(num_env_runners=args.runners)
        .learners(num_gpus_per_learner=gpus)
        .reporting(min_sample_timesteps_per_iteration=1)
    )
    algo = config.build_algo()
    try:

        def counts() -> tuple[int, int]:
            result = algo.train()
            learner = result.get("learners", {}).get("default_policy", {})
            steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
            return steps, int(learner.get(UPDATES_LIFETIME, 0))

        start = time.perf_counter()
        steps, updates = counts()
        while steps < args.learning_starts or updates == 0:  # fill, then capture the graph
            steps, updates = counts()
        warmup = time.perf_counter() - start
        first, start = (steps, updates), time.perf_counter()
        while time.perf_counter() - start < args.e2e_seconds:
            steps, updates = counts()
        elapsed = time.perf_counter() - start
        added = algo.replay_stats()["added"]
    finally:
        algo.stop()
    return {
        "updates_per_env_step": ratio,
        "env_runners": args.runners,
        "envs_per_env_runner": config.num_envs_per_env_runner,
        "rollout_fragment_length": config.rollout_fragment_length,
        "warmup_s": round(warmup, 1),
        "measured_s": round(elapsed, 1),
        "env_steps_per_s": round((steps - first[0]) / elapsed, 1),
        "updates_per_s": round((updates - first[1]) / elapsed, 1),
        "replay_transitions_added": int(added),
    }


# ---- the run ---------------------------------------------------------------------------------


def machine(device: torch.device) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "cpu_native_bfloat16": native_bfloat16(),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="everything small, on the CPU")
    parser.add_argument("--runners", type=int, default=12)
    parser.add_argument("--raw-seconds", type=float, default=12.0)
    parser.add_argument("--ceiling-seconds", type=float, default=3.0)
    parser.add_argument("--learner-updates", type=int, default=300, help="per round")
    parser.add_argument("--learner-rounds", type=int, default=3)
    parser.add_argument("--learning-starts", type=int, default=2_000)
    parser.add_argument("--e2e-seconds", type=float, default=35.0)
    parser.add_argument("--budget", type=float, default=340.0, help="seconds for everything")
    parser.add_argument("--only", nargs="*", help="run only these sections")
    parser.add_argument("--out", default="bench/results/gpu_dqn.json")
    args = parser.parse_args()
    if args.cpu:
        args.runners, args.raw_seconds, args.ceiling_seconds = 2, 5.0, 2.0
        args.learner_updates, args.learner_rounds, args.e2e_seconds = 10, 1, 10.0
    device = torch.device("cpu" if args.cpu else "cuda")
    gpus = 0 if args.cpu else 1
    began = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    envs.register_with_ray()
    record: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine(device),
        "targets": TARGETS,
    }
    raw = args.raw_seconds
    sections: list[tuple[str, float, Callable[[], Any]]] = [
        (
            "raw_python_loop_steps_per_s",
            raw + 15,
            lambda: raw_rate(raw_python_loop, args.runners, 4, raw),
        ),
        (
            "raw_atari_vector_steps_per_s",
            raw + 15,
            lambda: raw_rate(raw_vector, args.runners, 8, raw),
        ),
        (
            "plain_torch_updates_per_s",
            10 * args.ceiling_seconds + 20,
            lambda: ceilings(args, device),
        ),
        ("learners", 120, lambda: learners(args, gpus)),
        ("end_to_end_1.0", args.e2e_seconds + 35, lambda: end_to_end(args, gpus, 1.0)),
        ("end_to_end_0.25", args.e2e_seconds + 35, lambda: end_to_end(args, gpus, 0.25)),
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name, needs, run in sections:
        if args.only and name not in args.only:
            continue
        left = args.budget - (time.perf_counter() - began)
        if left < needs:
            record[name] = {"skipped": f"needs ~{needs:.0f} s, {left:.0f} s left"}
            continue
        start = time.perf_counter()
        try:
            record[name] = run()
        except Exception as error:  # one broken section must not cost the others
            record[name] = {"error": repr(error), "traceback": traceback.format_exc()[-2000:]}
        record[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
        print(
            f"[{time.perf_counter() - began:6.1f} s] {name}: {json.dumps(record[name])}", flush=True
        )
        out.write_text(json.dumps(record, indent=1))
    ray.shutdown()
    record["total_seconds"] = round(time.perf_counter() - began, 1)
    out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
