"""Replay memory on Breakout: bytes per transition, and minibatches served while EnvRunners write.

1. Memory: the rings allocated for `--capacity` transitions divided by the capacity (what 1M
   transitions cost by design), and the resident memory the actor grew by while `--fill` real
   Breakout transitions were added (frames from real `rldojo/Breakout-v0` play with random
   actions, re-added under new episode ids). The rings live in shared memory (a memfd), so they
   count as the actor's RssShmem, together with the object-store pages the chunks arrive in.
2. Throughput, both at once for `--seconds`: 2 writer processes push chunks as EnvRunners do
   (8 episodes x 32 steps per call, paced to `--write-rate` transitions/s together) while one
   learner-side consumer in this process draws minibatches of 32 as fast as it can, as the
   CPU learner loop does: `SharedSampler.sample_into` (a gather from the rings in shared memory)
   into a reused buffer that torch tensors view (no copy). The same for the old path,
   minibatches asked from the actor in chunks of 8 per round trip (`Replay.sample_async`),
   viewed in place in Ray's object store, in the same run.

Targets (issue 13): >= 1,200 minibatches of 32 per second to one learner while accepting
>= 5,000 transitions/s; <= 7.3 KB per transition (the 7,333 B of issue 8).

Usage:
    python bench/replay_memory.py            # full: 1M capacity, 100k filled, 30 s of each
    python bench/replay_memory.py --as-test  # small and short, asserts the targets
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402
from algorithms.common.replay_chunks import VectorChunks  # noqa: E402
from algorithms.common.replay_sampler import SharedSampler  # noqa: E402
from algorithms.common.replay_shards import Replay  # noqa: E402
from bench.records import machine, report  # noqa: E402

BYTES_TARGET = 7_333
MINIBATCHES_TARGET = 1_200
WRITE_TARGET = 5_000
BATCH = 32
ENVS, FRAGMENT = 8, 32  # what one writer sends per call, as an EnvRunner of 8 games does


def breakout_fragments(steps: int, seed: int = 0) -> list[list[Any]]:
    """Real Breakout play (random actions) cut as an EnvRunner cuts it: per call, one chunk of
    FRAGMENT steps for each of ENVS games."""
    env = envs.make_for_rllib("rldojo/Breakout-v0", {"num_envs": ENVS})
    obs, _ = env.reset(seed=seed)
    recorder = VectorChunks(ENVS, obs.shape[2:], obs.shape[1])
    recorder.start(obs)
    rng, restarting, calls = np.random.default_rng(seed), np.zeros(ENVS, dtype=bool), []
    for t in range(steps // ENVS):
        actions = rng.integers(3, size=ENVS)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        ended = terminated | truncated
        recorder.record(obs, actions, rewards, terminated, ended=ended, starts=restarting)
        restarting = ended
        if t % FRAGMENT == FRAGMENT - 1:
            calls.append(recorder.cut())
    env.close()
    return calls


def renamed(chunks: list[Any], copy: int) -> list[Any]:
    """The same chunks as other episodes (ids unique per copy), to replay real frames forever."""
    return [{**chunk, "episode_id": f"{chunk['episode_id']}-{copy}"} for chunk in chunks]


@ray.remote(num_cpus=0)
class Writer:
    """Pushes recorded fragments into the replay at a steady rate, as an EnvRunner would."""

    def __init__(self, calls: list[list[Any]], replay: Replay, rate: float, tag: int) -> None:
        self.calls, self.replay, self.rate, self.tag = calls, replay, rate, tag

    def run(self, seconds: float) -> tuple[int, float]:
        sent, copy, start = 0, 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            if sent > self.rate * elapsed:  # ahead of the pace: wait
                time.sleep(min(0.01, sent / self.rate - elapsed))
                continue
            chunks = renamed(self.calls[copy % len(self.calls)], 10_000 * self.tag + copy)
            self.replay.add(chunks)
            sent += sum(len(chunk["actions"]) for chunk in chunks)
            copy += 1
        return sent, time.perf_counter() - start


def consume(replay: Replay, seconds: float, shared: bool) -> dict[str, float]:
    """Minibatches of 32 drawn for `seconds` as the learner draws them, as torch tensors."""
    sampler = SharedSampler.connect(replay, seed=0) if shared else None
    if shared and sampler is None:
        raise RuntimeError("the replay's shared memory is not readable from here")
    buffer = sampler.empty_batch(BATCH) if sampler else replay.sample(BATCH)
    latencies, pending = [], None if sampler else replay.sample_async(BATCH, count=8)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        if sampler is not None:
            sampler.sample_into(buffer)
            batches = [buffer]
        else:  # through the actor: the next chunk is asked for while this one is used
            batches, pending = replay.collect(pending), replay.sample_async(BATCH, count=8)
        tensors = [{key: torch.from_numpy(v) for key, v in batch.items()} for batch in batches]
        assert all(t["obs"].shape == (BATCH, 4, 84, 84) for t in tensors)
        latencies.append((time.perf_counter() - t) * 1000 / len(batches))
    elapsed = time.perf_counter() - start
    return {
        "minibatches_per_s": round(len(latencies) * (1 if sampler else 8) / elapsed, 1),
        "ms_per_minibatch_p50": round(statistics.median(latencies), 3),
    }


def served_while_writing(replay: Replay, writers: list[Any], seconds: float, shared: bool) -> dict:
    runs = [writer.run.remote(seconds) for writer in writers]
    served = consume(replay, seconds, shared)
    written = ray.get(runs)
    served["transitions_added_per_s"] = round(sum(n / s for n, s in written), 1)
    return served


@ray.remote(num_cpus=0)
def resident_memory(pid: int) -> dict[str, int]:
    """Resident memory of a process on this node (Linux /proc), in bytes: all of it (VmRSS),
    its private part (RssAnon) and its shared part (RssShmem: the rings and object-store pages)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssShmem"):
            found[key] = int(line.split()[1]) * 1024
    return found


def memory_per_transition(calls: list[list[Any]], capacity: int, fill: int) -> dict[str, Any]:
    replay = Replay.create(num_shards=1, capacity=capacity, seed=0, n_step=1, gamma=0.99)
    shard = replay.shards[0]
    pid = ray.get(shard.__ray_call__.remote(lambda actor: os.getpid()))
    before, copy = ray.get(resident_memory.remote(pid)), 0
    while replay.stats()["size"] < fill:
        replay.add(renamed(calls[copy % len(calls)], copy))
        copy += 1
    stats, after = replay.stats(), ray.get(resident_memory.remote(pid))
    replay.kill()
    return {
        "capacity": capacity,
        "transitions_stored": int(stats["size"]),
        "allocated_bytes_per_transition": round(stats["bytes_per_transition"], 1),
        "allocated_gb_at_capacity": round(stats["allocated_bytes"] / 1e9, 2),
        "resident_bytes_per_transition_filled": {
            key: round((after[key] - before[key]) / stats["size"], 1) for key in after
        },
        "stacked_bytes_per_transition_for_comparison": 2 * 4 * 84 * 84,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--fill", type=int, default=100_000)
    parser.add_argument("--played", type=int, default=8_192, help="real env steps to replay")
    parser.add_argument("--seconds", type=float, default=30.0, help="per throughput run")
    parser.add_argument("--write-rate", type=float, default=6_000.0, help="transitions/s")
    parser.add_argument("--out", default="bench/results/replay_memory.json")
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    if args.as_test:
        args.capacity, args.fill, args.played, args.seconds = 100_000, 10_000, 2_048, 8.0

    torch.set_num_threads(1)  # as the DQN learner runs: one intra-op thread per learner CPU
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    calls = breakout_fragments(args.played)
    memory = memory_per_transition(calls, args.capacity, args.fill)
    replay = Replay.create(num_shards=1, capacity=100_000, seed=0, n_step=1, gamma=0.99)
    for copy in range(len(calls) * 2):  # a warm memory to draw from: ~16k transitions
        replay.add(renamed(calls[copy % len(calls)], -1 - copy))
    writers = [Writer.remote(calls, replay, args.write_rate / 2, tag) for tag in (1, 2)]
    shared = served_while_writing(replay, writers, args.seconds, shared=True)
    via_actor = served_while_writing(replay, writers, args.seconds, shared=False)
    replay.kill()
    ray.shutdown()

    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "memory": memory,
        "batch_size": BATCH,
        "writers": f"2 processes, each {ENVS} episodes x {FRAGMENT} steps per call",
        "write_rate_asked_per_s": args.write_rate,
        "shared_memory_reads": shared,
        "through_the_actor_8_per_round_trip": via_actor,
    }
    ok = (
        memory["allocated_bytes_per_transition"] <= BYTES_TARGET
        and shared["minibatches_per_s"] >= MINIBATCHES_TARGET
        and shared["transitions_added_per_s"] >= WRITE_TARGET
    )
    report(result, args.out, as_test=args.as_test, ok=ok)


if __name__ == "__main__":
    main()
