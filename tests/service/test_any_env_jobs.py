"""Any registered env id through the real server: a Gymnasium classic-control id and a
toy-text one train to the end; the catalog offers what this cluster can make."""

from __future__ import annotations

import httpx
import pytest

from algorithms.common import metrics
from service.client import Client
from tests.service.conftest import ALICE, Server


@pytest.mark.lifecycle  # two jobs to their end, a minute: make test-lifecycle
def test_gymnasium_ids_train_through_the_api(server: Server, alice: Client) -> None:
    acrobot = alice.submit({"algorithm": "dqn", "env": "Acrobot-v1", "stop": {"env_steps": 1500}})
    lake = alice.submit(
        {"algorithm": "q_learning", "env": "FrozenLake-v1", "stop": {"iterations": 3}}
    )
    for job in (acrobot, lake):
        done = alice.wait(job.id, timeout=300)
        assert done.status == "SUCCEEDED", done.message
        assert done.latest_metrics and done.latest_metrics[metrics.ENV_STEPS] > 0
    # the network got the lake's cells one-hot, the table their indices
    assert alice.job(lake.id).resolved_config["env_config"] == {}
    checked = httpx.post(
        f"{server.url}/v1/jobs/validate",
        json={"algorithm": "dqn", "env": "FrozenLake-v1"},
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["resolved_config"]["env_config"] == {"observation_encoding": "one_hot"}


def test_the_env_catalog_lists_what_this_cluster_can_make(alice: Client) -> None:
    listed = {env.id: env for env in alice.envs()}
    lander = listed["LunarLander-v3"]
    assert (lander.observation, lander.action) == ("vector", "discrete")
    assert {"dqn", "actor_critic"} <= set(lander.algorithms)
    assert "q_learning" not in lander.algorithms
    pong = listed["ALE/Pong-v5"]
    assert pong.observation == "image" and "dqn" in pong.algorithms
    assert "q_learning" in listed["FrozenLake-v1"].algorithms
    assert "CarRacing-v3" not in listed  # (96, 96, 3) screens: no network here takes them
