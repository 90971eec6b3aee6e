"""Any registered id: ALE games by their own ids through the book's pipeline, and the catalog
of what this Python can make."""

from __future__ import annotations

import numpy as np

import envs
from envs.catalog import catalog, trainable


def test_an_ale_id_builds_the_books_pipeline_with_the_ids_own_settings() -> None:
    pong = envs.make("ALE/Pong-v5")
    assert pong.observation_space.shape == (4, 84, 84)
    assert pong.observation_space.dtype == np.uint8
    assert pong.action_space.n == 6  # Pong's minimal set, not the book's 3 Breakout actions
    ale = pong.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == 0.25  # v5's sticky actions
    pong.close()
    # env_config overrides the id's settings; NoFrameskip ids leave the skip to the pipeline
    plain = envs.make("ALE/Pong-v5", {"repeat_action_probability": 0.0, "full_action_space": True})
    assert plain.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    assert plain.action_space.n == 18
    plain.close()
    from envs.atari import ale_id_settings

    assert ale_id_settings("PongNoFrameskip-v4")["frame_skip"] == 4
    assert ale_id_settings("PongNoFrameskip-v4")["repeat_action_probability"] == 0.0
    assert ale_id_settings("ALE/Pong-v5")["max_episode_steps"] == 108_000 // 4


def test_an_ale_id_steps_in_the_vector_env_for_rllib() -> None:
    vector = envs.make_for_rllib("ALE/SpaceInvaders-v5", {"num_envs": 2})
    obs, _ = vector.reset(seed=0)
    assert type(vector).__name__ == "AtariVector" and obs.shape == (2, 4, 84, 84)
    vector.close()


def test_the_catalog_lists_what_builds_here_with_its_kind() -> None:
    listed = {entry.id: entry for entry in catalog()}
    assert [entry.id for entry in catalog()][: len(envs.ENV_IDS)] == list(envs.ENV_IDS)
    for env_id, kind in (
        ("Acrobot-v1", "vector/discrete"),
        ("FrozenLake-v1", "discrete/discrete"),
        ("LunarLander-v3", "vector/discrete"),  # Box2D
        ("BipedalWalker-v3", "vector/continuous"),
        ("ALE/Pong-v5", "image/discrete"),
    ):
        entry = listed[env_id]
        assert entry.kind is not None, entry.problem
        assert f"{entry.kind.observation}/{entry.kind.action}" == kind
    assert listed["LunarLander-v3"].observation_space == "Box(8,) float32"
    # what does not build here, or cannot be trained on, says why and is not offered
    assert "channel-first" in (listed["CarRacing-v3"].problem or "")
    offered = {entry.id for entry in trainable()}
    assert "CarRacing-v3" not in offered and "ALE/Breakout-v5" in offered
