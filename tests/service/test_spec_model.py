"""The spec's schema imports nothing heavy, so the SDK and the CLI share it; what the registry
checks (service/spec.py) comes back as a spec of the same schema."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.spec import SpecError, parse_spec
from service.spec_model import JobSpec

HEAVY = ("ray", "torch", "gymnasium", "algorithms", "envs")


@pytest.mark.parametrize("module", ["service.spec_model", "service.client"])
def test_the_schema_and_the_sdk_import_nothing_heavy(module: str) -> None:
    code = f"import {module}, sys; print(sorted(set(sys.modules) & set({HEAVY!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_schema_checks_shape_and_the_registry_fills_in_the_rest() -> None:
    schema_only = JobSpec(algorithm="value_iteration", stop={"return_mean": 1.0})
    assert schema_only.env is None and not schema_only.stop.bounded
    with pytest.raises(ValueError, match="names no env yet"):
        _ = schema_only.env_id
    parsed = parse_spec(schema_only.model_dump(mode="json", exclude_unset=True))
    assert type(parsed) is JobSpec
    assert (parsed.env_id, parsed.stop.iterations) == ("rldojo/PlanningGrid-v0", 50)
    assert parsed.stop.return_mean == 1.0  # what was given stays


def test_an_unknown_algorithm_or_env_is_refused_by_the_registry_not_the_schema() -> None:
    JobSpec(algorithm="ppo9", env="Nope-v0")  # a shape the schema accepts
    with pytest.raises(SpecError) as caught:
        parse_spec({"algorithm": "ppo9", "env": "Nope-v0", "seed": -1})
    locations = [error["loc"] for error in caught.value.errors]
    assert locations == [["algorithm"], ["env"], ["seed"]]
