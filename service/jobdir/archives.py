"""Tar streaming: a checkpoint directory as a .tar.gz, produced while it is sent."""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs

from service.jobdir.checkpoints import Checkpoint
from service.jobdir.files import JobFiles


class ArchiveFiles(JobFiles):
    """Checkpoints packed for download (`rldojo pull`, GET .../checkpoints/{id}/download)."""

    def archive(self, checkpoint: Checkpoint) -> Iterator[bytes]:
        """Stream a checkpoint directory as a .tar.gz whose top folder is `checkpoint_NNNNNN`."""
        top = posixpath.basename(checkpoint.path)
        sink = _Chunks()
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:
            for info in sorted(self._list(checkpoint.path, recursive=True), key=lambda i: i.path):
                member = tarfile.TarInfo(f"{top}/{posixpath.relpath(info.path, checkpoint.path)}")
                member.mtime = int(info.mtime.timestamp()) if info.mtime else 0
                if info.type == pafs.FileType.Directory:
                    member.type = tarfile.DIRTYPE
                    member.mode = 0o755
                    tar.addfile(member)
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
