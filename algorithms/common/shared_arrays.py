"""numpy arrays in shared memory that other processes on the same node map read-only.

The replay memory keeps its rings here, so that a learner on the same node draws its
minibatches by reading them directly: no round trip to the replay actor, no copy through Ray's
object store, one copy from the rings into the learner's (pinned) batch buffers.

The memory is a Linux memfd (`os.memfd_create`). It has no name under /dev/shm, so Docker's
small default /dev/shm does not bound it and nothing is left behind when its owner dies; other
processes open it as `/proc/<owner pid>/fd/<fd>`. Where memfd is missing (not Linux) the arrays
are ordinary numpy arrays and `layout()` is None: readers then go through the actor.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

ALIGN = 64  # bytes: each array starts on a cache line
HAS_MEMFD = hasattr(os, "memfd_create")

Specs = dict[str, tuple[tuple[int, ...], Any]]  # name -> (shape, dtype)


def _offsets(specs: Specs) -> tuple[dict[str, int], int]:
    offsets, end = {}, 0
    for name, (shape, dtype) in specs.items():
        offsets[name] = end
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        end += -(-nbytes // ALIGN) * ALIGN
    return offsets, max(end, ALIGN)


def _views(buffer: Any, specs: Specs, offsets: dict[str, int]) -> dict[str, np.ndarray]:
    return {
        name: np.ndarray(shape, dtype=np.dtype(dtype), buffer=buffer, offset=offsets[name])
        for name, (shape, dtype) in specs.items()
    }


class SharedArrays:
    """Named numpy arrays in one shared-memory file, owned (and written) by this process.

    Example:
        >>> owner = SharedArrays({"x": ((3,), np.int64)})
        >>> owner.arrays["x"][:] = [1, 2, 3]
        >>> reader = SharedArrays.attach(owner.layout())  # in another process on the node
        >>> reader["x"].tolist(), reader["x"].flags.writeable
        ([1, 2, 3], False)
    """

    def __init__(self, specs: Specs) -> None:
        self.specs = {
            name: (tuple(shape), np.dtype(dtype).str) for name, (shape, dtype) in specs.items()
        }
        offsets, self.nbytes = _offsets(self.specs)
        self._offsets = offsets
        self._fd: int | None = None
        if HAS_MEMFD:
            self._fd = os.memfd_create("rldojo-replay", 0)
            os.ftruncate(self._fd, self.nbytes)  # pages are only backed once written
            buffer: Any = mmap.mmap(self._fd, self.nbytes)
        else:
            buffer = bytearray(self.nbytes)
        self.arrays = _views(buffer, self.specs, offsets)

    def layout(self) -> dict[str, Any] | None:
        """What `attach` needs, picklable; None when the memory cannot be shared."""
        if self._fd is None:
            return None
        return {
            "pid": os.getpid(),
            "fd": self._fd,
            "nbytes": self.nbytes,
            "specs": self.specs,
            "offsets": self._offsets,
        }

    @staticmethod
    def attach(layout: dict[str, Any]) -> dict[str, np.ndarray]:
        """Map another process's arrays read-only (same node; raises OSError otherwise)."""
        with open(f"/proc/{layout['pid']}/fd/{layout['fd']}", "rb") as handle:
            if os.fstat(handle.fileno()).st_size != layout["nbytes"]:
                raise OSError("the shared arrays changed since their layout was read")
            buffer = mmap.mmap(handle.fileno(), layout["nbytes"], access=mmap.ACCESS_READ)
        return _views(buffer, layout["specs"], layout["offsets"])

    def close(self) -> None:
        """Give the file descriptor back; the memory goes once no process maps it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()
