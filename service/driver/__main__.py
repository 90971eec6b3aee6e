"""`python -m service.driver --job-dir D --attempt N`: one attempt of an API job (its Ray job).

Not a user command: the API submits it to Ray Jobs (`service.jobs`); everything it needs is in
the job directory. It prints one line per iteration (the driver log the API shows) and ends
with `attempt N finished|stopped|failed`; a failed attempt exits 1 with the root cause.
"""

from __future__ import annotations

import argparse
import logging
import sys

from service.cli.local import ProgressDisplay
from service.cpu_share import autogroup_follows_niceness
from service.driver.callbacks import ProgressCallback
from service.driver.run import run_job
from service.jobdir import JobDirectory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.driver", description=__doc__)
    parser.add_argument("--job-dir", required=True, help="the job's directory (path or s3://)")
    parser.add_argument("--attempt", required=True, type=int, help="the attempt, from 1")
    args = parser.parse_args(argv)
    if args.attempt < 1:
        parser.error("--attempt counts from 1")
    autogroup_follows_niceness()  # training stays behind the API on a shared host
    logging.getLogger("ray").setLevel(logging.WARNING)
    # The driver says what it decided (where a resume starts, a stop request seen).
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s -- %(message)s")
    logging.getLogger("service").setLevel(logging.INFO)
    with ProgressDisplay() as display:
        ended = run_job(args.job_dir, args.attempt, callbacks=[ProgressCallback(display.update)])
    sys.stdout.write(f"attempt {args.attempt} {ended}\n")
    if ended == "failed":
        progress = JobDirectory.open(args.job_dir).read_progress(args.attempt) or {}
        sys.stderr.write(f"error: {progress.get('message', 'a trial failed')}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
