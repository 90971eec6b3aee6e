"""The driver trains the compiled job stored in the job directory, as it was compiled; its
config comes back from JSON as the config it was compiled from; its use of Tune internals is
refused under a Ray it was not tested with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray

import algorithms
from algorithms.common import metrics
from service.compiler import CompiledJob, build_config, compile_job
from service.driver.run import algorithm_config
from service.driver.tune_private import TESTED_RAY, UntestedRayError, check_ray_version
from service.jobdir import JobDirectory
from service.spec import parse_spec


@pytest.mark.parametrize("name", sorted(algorithms.ALGORITHMS))
def test_a_stored_compiled_config_is_the_config_it_was_compiled_from(name: str) -> None:
    spec = parse_spec({"algorithm": name, "seed": 4, "resources": {"placement": "SPREAD"}})
    stored = CompiledJob.model_validate_json(compile_job(spec).model_dump_json())
    assert algorithm_config(stored).to_dict() == build_config(spec).to_dict()


def test_tune_internals_are_refused_under_an_untested_ray() -> None:
    assert ray.__version__ == TESTED_RAY  # the installed Ray is the one they were tested with
    check_ray_version(TESTED_RAY)
    with pytest.raises(UntestedRayError, match="tested with Ray 2.60.0; found Ray 9.9.9$"):
        check_ray_version("9.9.9")


def test_the_driver_trains_the_stored_compiled_job(tmp_path: Path) -> None:
    spec = parse_spec({"algorithm": "q_learning", "stop": {"iterations": 50}})
    # Stored with a stop its spec would not compile to: the driver must run what is stored.
    stored = compile_job(spec).model_copy(update={"stop": {metrics.ITERATION: 2.0}})
    directory = JobDirectory.open(str(tmp_path / "job"))
    directory.write_compiled(stored.model_dump(mode="json"))
    done = subprocess.run(
        [sys.executable, "-m", "service.driver", "--job-dir", directory.uri, "--attempt", "1"],
        env={**os.environ, "RAY_ADDRESS": "local"},  # its own Ray, never another on this box
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("attempt 1 finished")
    assert [row[metrics.ITERATION] for row in directory.rows()] == [1, 2]
    assert (directory.read_progress(1) or {}).get("phase") == "finished"
