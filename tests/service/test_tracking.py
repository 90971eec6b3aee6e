"""MLflow tracking of a job's trials, in a real MLflow store (SQLite): one run per trial with the
job's tags, the trial's hyperparameters as params and its result rows as metrics; a resumed job
continues its runs; a spec asking for tracking is refused where there is no store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from algorithms.common import metrics
from service.client import Client
from service.compiler import compile_job, with_stop
from service.driver.run import train
from service.driver.tracking import JOB_TAG, TRIAL_TAG, result_metrics, run_params
from service.jobdir import JobDirectory
from service.settings import Settings
from service.spec import SpecError, parse_spec
from tests.service.conftest import Server

GRID = {
    "algorithm": "q_learning",
    "seed": 3,
    "stop": {"iterations": 3},
    "resources": {"env_runners": 0},
    "search": {"alpha": {"grid": [0.05, 0.2]}},
    "tracking": {"mlflow": True, "experiment": "grid-test"},
}


def _runs(uri: str, experiment: str) -> list[Any]:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r} in {uri}"
    return list(client.search_runs([found.experiment_id]))


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key)]


def test_a_spec_asking_for_mlflow_is_refused_without_a_tracking_store() -> None:
    with pytest.raises(SpecError) as refused:
        compile_job(parse_spec(GRID))
    assert refused.value.errors[0]["loc"] == ["tracking", "mlflow"]
    assert "RLDOJO_MLFLOW_TRACKING_URI" in refused.value.errors[0]["msg"]
    untracked = compile_job(parse_spec({**GRID, "tracking": {}}), mlflow_uri="sqlite:///x.db")
    assert untracked.mlflow_uri is None  # the store is used only by jobs that ask for it


def test_a_tracking_uri_with_credentials_is_refused_as_a_setting() -> None:
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_PASSWORD"):
        Settings(mlflow_tracking_uri="https://me:secret@mlflow.example/")
    assert Settings(mlflow_tracking_uri="sqlite:////srv/mlflow.db").mlflow_tracking_uri


def test_run_params_are_the_hyperparameters_and_settings_flattened_to_text() -> None:
    config = {"alpha": 0.1, "gamma": 0.9, "env": "rldojo/GridWorld-v0", "lr": None,
              "env_config": {"size": 5}, "callbacks_class": "<class>"}  # fmt: skip
    params = run_params(config, ["alpha", "gamma", "lr"])
    assert params == {"alpha": "0.1", "gamma": "0.9", "env": "rldojo/GridWorld-v0",
                      "env_config/size": "5"}  # fmt: skip


def test_result_metrics_keep_the_numbers_that_measure_training() -> None:
    row = {metrics.EPISODE_RETURN_MEAN: 0.5, metrics.ITERATION: 2, "done": False, "pid": 7,
           "config/alpha": 0.1, "trial_id": "a", "nan": float("nan")}  # fmt: skip
    assert result_metrics(row) == {metrics.EPISODE_RETURN_MEAN: 0.5, metrics.ITERATION: 2.0}


def test_each_trial_is_an_mlflow_run_that_a_resume_continues(
    ray_local: None, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    compiled = compile_job(parse_spec(GRID), mlflow_uri=uri)
    directory = JobDirectory.open(str(tmp_path / "job-7"))
    train(compiled, directory)

    runs = _runs(uri, "grid-test")
    assert len(runs) == 2
    assert {run.data.tags[JOB_TAG] for run in runs} == {"job-7"}
    assert {run.data.tags["rldojo.algorithm"] for run in runs} == {"q_learning"}
    assert {run.data.params["alpha"] for run in runs} == {"0.05", "0.2"}
    assert {run.data.params["gamma"] for run in runs} == {"0.9"}
    trial_ids = {run.data.tags[TRIAL_TAG] for run in runs}
    assert trial_ids == {row["trial_id"] for row in directory.rows()}
    for run in runs:
        assert run.info.status == "FINISHED"  # paused at the stop criteria: done
        history = _history(uri, run.info.run_id, metrics.ITERATION)
        assert [value for _, value in history] == [1.0, 2.0, 3.0]
        assert [step for step, _ in history] == sorted(step for step, _ in history)
        assert _history(uri, run.info.run_id, metrics.EPISODE_RETURN_MEAN)

    longer = parse_spec({**GRID, "stop": {"iterations": 5}})
    train(with_stop(compiled, longer), directory, resume=True)
    resumed = _runs(uri, "grid-test")
    assert {run.info.run_id for run in resumed} == {run.info.run_id for run in runs}
    for run in resumed:
        history = _history(uri, run.info.run_id, metrics.ITERATION)
        assert [value for _, value in history] == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert run.info.status == "FINISHED"


@pytest.mark.lifecycle
def test_a_job_submitted_with_tracking_logs_its_trial_to_the_services_store(
    server: Server, alice: Client
) -> None:
    spec = {"algorithm": "q_learning", "stop": {"iterations": 3}, "tracking": {"mlflow": True}}
    job = alice.submit(spec)
    done = alice.wait(job.id, timeout=300)
    assert done.status == "SUCCEEDED", done.message
    uri = server.env["RLDOJO_MLFLOW_TRACKING_URI"]
    runs = [run for run in _runs(uri, "rldojo") if run.data.tags[JOB_TAG] == job.id]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["rldojo.env"] == done.spec["env"]
    assert runs[0].data.params["gamma"] == str(done.resolved_config["gamma"])
    history = _history(uri, runs[0].info.run_id, metrics.ITERATION)
    assert [value for _, value in history] == [1.0, 2.0, 3.0]
