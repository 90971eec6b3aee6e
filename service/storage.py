"""The storage root: a local path or an `s3://` URI holding one directory per job.

    <root>/jobs/<job_id>/          a `JobDirectory` (service/jobdir/): everything of one job

`Storage` only finds and removes job directories; what is inside one is `JobDirectory`'s.
"""

from __future__ import annotations

import posixpath

import pyarrow.fs as pafs

from service.jobdir import JobDirectory, RowCache, filesystem


class Storage:
    """The job directories under `root` (a local path or an `s3://` URI)."""

    def __init__(self, root: str) -> None:
        self.root_uri = root.rstrip("/") if "://" in root else posixpath.abspath(root)
        self.fs, self.base = filesystem(root)
        self.cache = RowCache()  # parsed result rows, shared by every request
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(self.base, recursive=True)
        else:
            self._check_bucket()

    def _check_bucket(self) -> None:
        """Fail at start-up, naming the root, when an object store's bucket is not there."""
        bucket = self.base.split("/", 1)[0]
        try:
            found = self.fs.get_file_info(bucket).type != pafs.FileType.NotFound
        except OSError as error:
            raise ValueError(f"storage root {self.root_uri}: {error}") from None
        if not found:
            raise ValueError(
                f"storage root {self.root_uri}: bucket {bucket!r} does not exist (create it first)"
            )

    def job(self, job_id: str) -> JobDirectory:
        """Job `job_id`'s directory (which may not exist yet)."""
        return JobDirectory(
            self.fs,
            f"{self.base}/jobs/{job_id}",
            f"{self.root_uri}/jobs/{job_id}",
            self.cache,
        )
