"""What `rldojo pull` downloads for a Breakout DQN checkpoint: weights only vs the whole one.

Issue 22 saw 240 MB pulled (a 315 MB checkpoint, growing toward ~730 MB at 100k transitions)
because the replay memory travelled with the weights. This bench trains the book's Breakout DQN
(`book_breakout`, Nature CNN) until its replay memory holds `--transitions`, saves a checkpoint
as a job's trial does, and packs it as the API's archive route does, both ways
(`service/jobdir/archives.py`); target: weights only under 10 MB.

    .venv/bin/python bench/checkpoint_size.py              # 20,000 transitions, recorded
    .venv/bin/python bench/checkpoint_size.py --as-test    # 500 transitions, not recorded
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from algorithms.dqn import PRESETS, DQNConfig  # noqa: E402
from bench.records import machine, report  # noqa: E402
from service.jobdir.checkpoints import Checkpoint  # noqa: E402
from service.storage import Storage  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TARGET_MB = 10.0
COMMAND = ".venv/bin/python bench/checkpoint_size.py"


def archive_mb(storage: Storage, folder: Path, *, whole: bool) -> float:
    """The .tar.gz the archive route streams for `folder`, in MB."""
    checkpoint = Checkpoint("bench", "bench", None, None, None, str(folder))
    size = sum(len(chunk) for chunk in storage.job("bench").archive(checkpoint, whole=whole))
    return round(size / 1e6, 2)


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-test", action="store_true")
    parser.add_argument("--transitions", type=int, default=20_000)
    args = parser.parse_args()
    transitions = 500 if args.as_test else args.transitions
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        DQNConfig()
        .environment("rldojo/Breakout-v0")
        .training(**{**PRESETS["book_breakout"].values, "learning_starts": 10**8})
        .reporting(min_sample_timesteps_per_iteration=min(transitions, 5_000))
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        while algo.replay_stats()["size"] < transitions:
            algo.train()
        held = int(algo.replay_stats()["size"])
        folder = Path(tempfile.mkdtemp(prefix="rldojo-ckpt-")) / "checkpoint_000001"
        algo.save_to_path(str(folder))
    finally:
        algo.stop()
        ray.shutdown()
    storage = Storage(str(folder.parent))
    light, whole = archive_mb(storage, folder, whole=False), archive_mb(storage, folder, whole=True)
    result = {
        "benchmark": "a Breakout DQN checkpoint pulled: weights only vs the whole checkpoint",
        "command": ".venv/bin/python bench/checkpoint_size.py"
        + (" --as-test" if args.as_test else ""),
        "machine": machine(),
        "preset": "book_breakout",
        "replay_transitions_held": held,
        "checkpoint_on_disk_mb": folder_mb(folder),
        "replay_on_disk_mb": folder_mb(folder / "replay"),
        "pull_weights_only_mb": light,
        "pull_with_replay_mb": whole,
        "target_weights_only_mb": TARGET_MB,
    }
    report(
        result, str(RESULTS / "checkpoint_size.json"), as_test=args.as_test, ok=light < TARGET_MB
    )


if __name__ == "__main__":
    main()
