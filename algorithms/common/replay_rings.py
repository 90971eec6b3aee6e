"""The replay memory's rings as its writer and its readers share them.

A `ReplayMemory` keeps its transitions in fixed-size numpy rings in shared memory
(`shared_arrays.py`): `frames` (each frame once) and, per transition, `obs_slots` and
`next_slots` (the frames of its two stacks), `oldest` (the serial of its oldest frame),
`actions`, `rewards` (n-step returns) and `discounts`. Learners on its node read them directly
(`replay_sampler.py`), with `gather`.

The memory writes while learners read. It publishes, in a small shared header, how far it is
about to overwrite (before writing) and how many transitions are complete (after writing); a
reader keeps a drawn row only if no write reached it while it was read, and redraws it
otherwise (a sequence lock; a restore marks the header odd while it rewrites everything).
"""

from __future__ import annotations

import numpy as np

# The shared header's fields (int64). GENERATION is odd while the memory is being rewritten.
GENERATION, ADDED, ADDED_RESERVED, FRAMES_RESERVED = range(4)
TRANSITION_KEYS = ("obs_slots", "next_slots", "oldest", "actions", "rewards", "discounts")
BATCH_DTYPES = {"actions": np.int64, "rewards": np.float32, "discounts": np.float32}


def gather(
    arrays: dict[str, np.ndarray],
    index: np.ndarray,
    *,
    stacked: bool,
    out: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The transitions at ring positions `index`, frame stacks rebuilt (into `out` if given).

    Returns:
        obs and next_obs (B, S, *frame) for stacks, (B, *frame) otherwise; actions, rewards
        (n-step returns), discounts (B,) and oldest (B,), the first frame serial referenced.
    """
    out = {} if out is None else out
    for key, slots in (("obs", "obs_slots"), ("next_obs", "next_slots")):
        frame_ids = arrays[slots][index]  # (B, S)
        if not stacked:
            frame_ids = frame_ids[:, 0]
        out[key] = np.take(arrays["frames"], frame_ids, axis=0, out=out.get(key), mode="clip")
    for key in ("actions", "rewards", "discounts", "oldest"):
        out[key] = np.take(arrays[key], index, out=out.get(key), mode="clip")
    return out
