"""The job directory's filesystem: one job's files on a local path or `s3://` (`pyarrow.fs`).

`JobFiles` is what every part of the directory builds on: where the job is, how another
process (a Ray job) opens a path of it, and small files read, written, listed and streamed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Self

import pyarrow.fs as pafs

from service.jobdir.row_parser import RowCache


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it for a local path or a URI."""
    uri = location if "://" in location else "file://" + posixpath.abspath(location)
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


class JobFiles:
    """One job's files: its filesystem, its path in it, and the URI other processes open."""

    def __init__(
        self, fs: pafs.FileSystem, path: str, uri: str, cache: RowCache | None = None
    ) -> None:
        self.fs = fs
        self.path = path.rstrip("/")
        self.uri = uri.rstrip("/")
        self.cache = cache or RowCache()

    @classmethod
    def open(cls, location: str, cache: RowCache | None = None) -> Self:
        """The job directory at a local path (made absolute) or an `s3://` URI."""
        fs, path = filesystem(location)
        uri = location.rstrip("/") if "://" in location else path
        return cls(fs, path, uri, cache)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def _uri_of(self, path: str) -> str:
        """A path of this filesystem as something another process (a Ray job) can open."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return path
        return self.uri + path[len(self.path) :]

    # ---- small files --------------------------------------------------------------------------

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode())

    def write_bytes(self, relative: str, data: bytes) -> None:
        path = f"{self.path}/{relative}"
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as stream:
            stream.write(data)

    def read_text(self, relative: str) -> str | None:
        return self._read(f"{self.path}/{relative}")

    def _read(self, path: str) -> str | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return bytes(stream.read()).decode(errors="replace")
        except (FileNotFoundError, OSError):
            return None

    def _exists(self, path: str) -> bool:
        return bool(self.fs.get_file_info(path).type != pafs.FileType.NotFound)

    def exists(self, relative: str = "") -> bool:
        return self._exists(f"{self.path}/{relative}".rstrip("/"))

    def _list(self, path: str, recursive: bool = False) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=recursive)
        try:
            return list(self.fs.get_file_info(selector))
        except (FileNotFoundError, OSError):
            return []

    def delete(self) -> None:
        """Remove every file of the job."""
        if self.exists():
            self.fs.delete_dir(self.path)

    def open_stream(self, path: str, chunk: int = 1 << 16) -> Iterator[bytes]:
        """A file's bytes in chunks (`path` as this directory handed it out)."""
        with self.fs.open_input_stream(path) as stream:
            while data := stream.read(chunk):
                yield bytes(data)
