"""Tar streaming: a checkpoint directory as a .tar.gz, produced while it is sent.

By default only what plays the policy travels: the config and the RLModule's weights, which
`rldojo evaluate`, `export` and `play` read (`algorithms/evaluation.py`). What only a resume
needs stays on the cluster unless asked for: DQN's replay memory (`replay/`, written by
`algorithms/dqn.py`), the optimizer's state, the EnvRunners' connectors and the target
network's copy of the weights (`target_*` in a module's state; an inference module has none and
ignores them). For a Breakout DQN that is nearly all of a checkpoint's size (hundreds of MB
against the weights' 6.7).
"""

from __future__ import annotations

import io
import pickle
import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs

from service.jobdir.checkpoints import Checkpoint, NumbersOnly
from service.jobdir.files import JobFiles

# A checkpoint's parts (paths inside it) that only resuming the run reads.
RESUME_ONLY = ("replay", "env_runner", "learner_group/learner/state.pkl")


MODULE_STATES = "learner_group/learner/rl_module/"  # then <module id>/module_state.pkl
MODULE_STATE = "module_state.pkl"
TARGET_PREFIX = "target_"  # the learner's target networks (algorithms/dqn_rl_module.py)


def plays_the_policy(relative: str) -> bool:
    """Whether a checkpoint's file or folder (`relative` to it) goes in a weights-only archive."""
    return not any(relative == part or relative.startswith(part + "/") for part in RESUME_ONLY)


def is_module_state(relative: str) -> bool:
    """A module's weights (`rl_module/<id>/module_state.pkl`), which may hold target networks."""
    inside = relative.removeprefix(MODULE_STATES)
    return inside != relative and inside.count("/") == 1 and inside.endswith("/" + MODULE_STATE)


def without_target_networks(pickled: bytes) -> bytes:
    """A module state's pickle less its `target_*` tensors; as it came when it is not a plain
    dict of arrays (nothing but plain data and numpy is unpickled: no code runs)."""
    try:
        state = NumbersOnly(io.BytesIO(pickled)).load()
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, AttributeError):
        return pickled
    if not isinstance(state, dict):
        return pickled
    kept = type(state)((k, v) for k, v in state.items() if not str(k).startswith(TARGET_PREFIX))
    return pickled if len(kept) == len(state) else pickle.dumps(kept, protocol=5)


class ArchiveFiles(JobFiles):
    """Checkpoints packed for download (`rldojo pull`, GET .../checkpoints/{id}/archive)."""

    def archive(self, checkpoint: Checkpoint, *, whole: bool = False) -> Iterator[bytes]:
        """Stream a checkpoint directory as a .tar.gz whose top folder is `checkpoint_NNNNNN`:
        what plays the policy, or with `whole` everything a resume reads too."""
        top = posixpath.basename(checkpoint.path)
        sink = _Chunks()
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:
            for info in sorted(self._list(checkpoint.path, recursive=True), key=lambda i: i.path):
                relative = posixpath.relpath(info.path, checkpoint.path)
                if not (whole or plays_the_policy(relative)):
                    continue
                member = tarfile.TarInfo(f"{top}/{relative}")
                member.mtime = int(info.mtime.timestamp()) if info.mtime else 0
                if info.type == pafs.FileType.Directory:
                    member.type = tarfile.DIRTYPE
                    member.mode = 0o755
                    tar.addfile(member)
                elif not whole and is_module_state(relative):
                    with self.fs.open_input_stream(info.path) as stream:
                        weights = without_target_networks(bytes(stream.read()))
                    member.size, member.mode = len(weights), 0o644
                    tar.addfile(member, io.BytesIO(weights))
                else:
                    member.size = int(info.size or 0)
                    member.mode = 0o644
                    with self.fs.open_input_stream(info.path) as stream:
                        tar.addfile(member, _Reader(stream))
                yield from sink.drain()
        yield from sink.drain()


class _Chunks(io.RawIOBase):
    """A write-only sink that hands back what was written so far (for streamed tar.gz)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        if parts:
            yield b"".join(parts)


class _Reader:
    """Adapts a pyarrow input stream to the `read(n)` tarfile expects."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        return bytes(self.stream.read() if size < 0 else self.stream.read(size))
