"""Replay actor on Breakout: bytes per stored transition and the latency of a batch of 32.

- Bytes per transition, two ways: the rings allocated for `--capacity` transitions divided by
  the capacity (what 1M transitions cost by design), and the resident memory the actor actually
  grew by while `--fill` real Breakout transitions were added (frames from real episodes of
  `rldojo/Breakout-v0` with random actions, re-added under new episode ids to reach `--fill`):
  its private memory (RssAnon) apart from the pages of Ray's object store that the arriving
  transitions passed through (RssShmem, bounded by the object store's size and reused).
- Sample latency: `Replay.sample(32)` from the driver through the Ray actor (request, frame-stack
  rebuild, transfer of 2 x 32 x 4 x 84 x 84 uint8), over `--samples` calls; and the same
  `ReplayMemory.sample(32)` in-process, without Ray.

Targets (issue 8): at most 7.5 KB per transition; at most 5 ms per batch of 32.

Usage:
    python bench/replay_memory.py                      # full: 1M capacity, 100k filled
    python bench/replay_memory.py --as-test            # small fill, asserts both targets
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402
from algorithms.common.replay import Replay, ReplayMemory  # noqa: E402
from algorithms.common.replay_chunks import episode_chunk  # noqa: E402

BYTES_TARGET = 7_500
LATENCY_TARGET_MS = 5.0


def breakout_chunks(steps: int, seed: int = 0) -> list[Any]:
    """Episode chunks (as EnvRunners send them) of real Breakout play with random actions."""
    import gymnasium as gym
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    env = envs.make("rldojo/Breakout-v0")
    rng = np.random.default_rng(seed)
    chunks, played = [], 0
    while played < steps:
        obs, info = env.reset(seed=seed + played)
        episode = SingleAgentEpisode(
            observation_space=env.observation_space, action_space=gym.spaces.Discrete(3)
        )
        episode.add_env_reset(observation=obs, infos=info)
        done = False
        while not done and played < steps:
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(3)))
            episode.add_env_step(
                observation=obs,
                action=0,
                reward=float(reward),
                infos=info,
                terminated=terminated,
                truncated=truncated,
            )
            played += 1
            done = terminated or truncated
            if len(episode) == 256 and not done:  # EnvRunners send fragments, not whole games
                chunks.append(episode_chunk(episode, stacked=True, life_loss_terminal=True))
                episode = episode.cut()
        if len(episode):
            chunks.append(episode_chunk(episode, stacked=True, life_loss_terminal=True))
    env.close()
    return chunks


def renamed(chunks: list[Any], copy: int) -> list[Any]:
    """The same chunks as new episodes (ids unique per copy), to fill the memory quickly."""
    return [{**chunk, "episode_id": f"{chunk['episode_id']}-{copy}"} for chunk in chunks]


@ray.remote(num_cpus=0)
def actor_memory(pid: int) -> dict[str, int]:
    """Resident memory of a process on this node, in bytes (Linux /proc): all of it (VmRSS),
    its private memory (RssAnon) and its touched shared memory (RssShmem: Ray's object store,
    through which the transitions arrive)."""
    wanted = {"VmRSS", "RssAnon", "RssShmem"}
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in wanted:
            found[key] = int(line.split()[1]) * 1024
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--fill", type=int, default=100_000)
    parser.add_argument("--played", type=int, default=5_000, help="real env steps to replay")
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--out", default="bench/results/replay_memory.json")
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    if args.as_test:
        args.capacity, args.fill, args.played, args.samples = 100_000, 10_000, 2_000, 200

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    chunks = breakout_chunks(args.played)
    replay = Replay.create(num_shards=1, capacity=args.capacity, seed=0, n_step=1, gamma=0.99)
    shard = replay.shards[0]
    pid = ray.get(shard.__ray_call__.remote(lambda actor: os.getpid()))
    before = ray.get(actor_memory.remote(pid))
    copy = 0
    while ray.get(shard.stats.remote())["size"] < args.fill:
        replay.add(renamed(chunks, copy))
        copy += 1
    stats = replay.stats()
    after = ray.get(actor_memory.remote(pid))
    replay.sample(32)  # warm up
    latencies = []
    for _ in range(args.samples):
        start = time.perf_counter()
        batch = replay.sample(32)
        latencies.append((time.perf_counter() - start) * 1000)
    assert batch["obs"].shape == (32, 4, 84, 84)

    local = ReplayMemory(capacity=20_000, n_step=1, gamma=0.99, seed=0)
    local.add(chunks)
    in_process = []
    for _ in range(args.samples):
        start = time.perf_counter()
        local.sample(32)
        in_process.append((time.perf_counter() - start) * 1000)
    replay.kill()
    ray.shutdown()

    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, no GPU",
        "capacity": args.capacity,
        "transitions_stored": int(stats["size"]),
        "frames_stored": int(stats["frames_written"]),
        "allocated_bytes_per_transition": round(stats["bytes_per_transition"], 1),
        "allocated_gb_at_capacity": round(stats["allocated_bytes"] / 1e9, 2),
        "resident_bytes_per_transition_filled": {
            key: round((after[key] - before[key]) / stats["size"], 1) for key in after
        },
        "stacked_bytes_per_transition_for_comparison": 2 * 4 * 84 * 84,
        "sample32_via_actor_ms": {
            "mean": round(statistics.mean(latencies), 3),
            "p50": round(statistics.median(latencies), 3),
            "p95": round(float(np.percentile(latencies, 95)), 3),
        },
        "sample32_in_process_ms": {
            "mean": round(statistics.mean(in_process), 3),
            "p50": round(statistics.median(in_process), 3),
        },
    }
    print(json.dumps(result, indent=1))
    ok_bytes = result["allocated_bytes_per_transition"] <= BYTES_TARGET
    ok_latency = result["sample32_via_actor_ms"]["p50"] <= LATENCY_TARGET_MS
    if args.as_test:
        assert ok_bytes and ok_latency, result
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
