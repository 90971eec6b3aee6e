"""The replay memory: add/sample/state round trip, n-step returns, frame-stack reconstruction."""

from __future__ import annotations

import threading

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

import envs
from algorithms.common.replay import ReplayMemory
from algorithms.common.replay_chunks import VectorChunks, episode_chunk, is_frame_stack
from algorithms.common.replay_sampler import SharedSampler
from algorithms.common.replay_shards import Replay

GAMMA = 0.9


def _episode(
    observations: list[np.ndarray],
    *,
    rewards: list[float],
    terminated: bool = False,
    life_lost: list[bool] | None = None,
    id_: str | None = None,
) -> SingleAgentEpisode:
    """A real RLlib episode holding these observations, actions = rewards % 2 (a random id
    unless `id_` is given)."""
    first = observations[0]
    space = gym.spaces.Box(0, 255, first.shape, first.dtype)
    episode = SingleAgentEpisode(
        id_=id_, observation_space=space, action_space=gym.spaces.Discrete(2)
    )
    episode.add_env_reset(observation=observations[0], infos={})
    for t, obs in enumerate(observations[1:]):
        episode.add_env_step(
            observation=obs,
            action=int(rewards[t]) % 2,
            reward=rewards[t],
            infos={"life_lost": bool(life_lost and life_lost[t])},
            terminated=terminated and t == len(observations) - 2,
        )
    return episode


def _by_reward(batch: dict[str, np.ndarray]) -> dict[float, int]:
    """Row of each sampled transition, keyed by its (unique, 1-step) reward."""
    return {float(r): i for i, r in enumerate(batch["rewards"])}


def test_vector_add_sample_and_state_round_trip() -> None:
    observations = [np.array([t, -t], dtype=np.float32) for t in range(6)]
    episode = _episode(observations, rewards=[10.0, 11, 12, 13, 14], terminated=True)
    memory = ReplayMemory(capacity=100, n_step=1, gamma=GAMMA, seed=0)
    assert memory.add([episode_chunk(episode, stacked=False)]) == 5
    batch = memory.sample(64)
    for reward, row in _by_reward(batch).items():
        t = int(reward) - 10
        np.testing.assert_array_equal(batch["obs"][row], observations[t])
        np.testing.assert_array_equal(batch["next_obs"][row], observations[t + 1])
        assert batch["actions"][row] == int(reward) % 2
        assert batch["discounts"][row] == pytest.approx(0.0 if t == 4 else GAMMA)
    assert set(_by_reward(batch)) == {10.0, 11.0, 12.0, 13.0, 14.0}

    state = memory.get_state()
    again = ReplayMemory(capacity=100, n_step=1, gamma=GAMMA, seed=0)
    again.set_state(state)
    assert again.stats()["size"] == 5
    expected, restored = memory.sample(16), again.sample(16)  # same rng state, same draws
    for key in expected:
        np.testing.assert_array_equal(expected[key], restored[key])
    with pytest.raises(ValueError, match="capacity=100"):
        ReplayMemory(capacity=50, n_step=1).set_state(state)


def test_n_step_returns_across_chunks_and_a_life_loss() -> None:
    # One episode in two chunks; the life loss at step 2 cuts the bootstrap like a terminal.
    observations = [np.array([t], dtype=np.float32) for t in range(7)]
    rewards = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    lost = [False, False, True, False]
    first_chunk = _episode(observations[:5], rewards=rewards[:4], life_lost=lost)
    tail = first_chunk.cut()  # the episode's next chunk: steps 4 and 5, then a time limit
    for t in range(4, 6):
        tail.add_env_step(
            observation=observations[t + 1], action=0, reward=rewards[t], infos={}, truncated=t == 5
        )
    memory = ReplayMemory(capacity=100, n_step=3, gamma=0.5, seed=0)
    memory.add([episode_chunk(first_chunk, stacked=False, life_loss_terminal=True)])
    assert memory.stats()["size"] == 3  # steps 0-2 closed by the life loss; step 3 waits
    memory.add([episode_chunk(tail, stacked=False, life_loss_terminal=True)])
    assert memory.stats()["size"] == 6
    batch = memory.sample(200)
    found = {
        int(o[0]): (r, n[0], d)
        for o, r, n, d in zip(
            batch["obs"], batch["rewards"], batch["next_obs"], batch["discounts"], strict=True
        )
    }
    # t: (n-step return, next observation, discount)
    expected = {
        0: (1 + 0.5 * 2 + 0.25 * 4, 3, 0.0),  # window 0..2 ends at the life loss
        1: (2 + 0.5 * 4, 3, 0.0),
        2: (4.0, 3, 0.0),
        3: (8 + 0.5 * 16 + 0.25 * 32, 6, 0.125),  # spans both chunks
        4: (16 + 0.5 * 32, 6, 0.25),  # truncated: bootstrap from the last observation
        5: (32.0, 6, 0.5),
    }
    assert set(found) == set(expected)
    for t, (ret, nxt, disc) in expected.items():
        assert found[t][0] == pytest.approx(ret)
        assert found[t][1] == nxt
        assert found[t][2] == pytest.approx(disc)


def _stacks(frames: list[np.ndarray], starts: set[int]) -> list[np.ndarray]:
    """4-frame stacks, oldest first, refilled with copies of the new frame at each start."""
    stacks, history = [], []
    for t, frame in enumerate(frames):
        history = [frame] * 4 if t in starts else (history + [frame])[-4:]
        stacks.append(np.stack(history))
    return stacks


def test_frame_stacks_are_stored_once_and_rebuilt_exactly() -> None:
    frames = [np.full((3, 3), t, dtype=np.uint8) for t in range(12)]
    # Step 6 re-initialises the history (as the book's v2 does after a lost life).
    observations = _stacks(frames, starts={0, 6})
    rewards = [float(100 + t) for t in range(11)]
    episode = _episode(observations[:8], rewards=rewards[:7])
    rest = episode.cut()
    for t in range(7, 11):
        rest.add_env_step(
            observation=observations[t + 1],
            action=0,
            reward=rewards[t],
            infos={},
            terminated=t == 10,
        )
    memory = ReplayMemory(capacity=64, n_step=1, gamma=GAMMA, seed=1)
    first, second = episode_chunk(episode, stacked=True), episode_chunk(rest, stacked=True)
    # Reset padding and the re-initialised history are sent as one frame each.
    assert len(first["frames"]) + len(second["frames"]) == 12
    memory.add([first])
    memory.add([second])
    assert memory.stats()["frames_written"] == 12
    batch = memory.sample(500)
    assert batch["obs"].shape[1:] == (4, 3, 3) and batch["obs"].dtype == np.uint8
    rows = _by_reward(batch)
    assert len(rows) == 11
    for reward, row in rows.items():
        t = int(reward) - 100
        np.testing.assert_array_equal(batch["obs"][row], observations[t])
        np.testing.assert_array_equal(batch["next_obs"][row], observations[t + 1])


def test_breakout_frames_round_trip_and_memory_per_transition() -> None:
    env = envs.make("rldojo/Breakout-v0")
    assert is_frame_stack(env.observation_space)
    obs, _ = env.reset(seed=3)
    observations, rewards, life_lost = [obs], [], []
    rng = np.random.default_rng(0)
    for t in range(150):
        obs, _, terminated, truncated, info = env.step(int(rng.integers(3)))
        observations.append(obs)
        rewards.append(float(t))  # unique, to find each transition again
        life_lost.append(bool(info["life_lost"]))
        if terminated or truncated:
            break
    env.close()
    episode = _episode(observations, rewards=rewards, life_lost=life_lost)
    memory = ReplayMemory(capacity=10_000, n_step=1, gamma=0.99, seed=0)
    memory.add([episode_chunk(episode, stacked=True, life_loss_terminal=True)])
    stats = memory.stats()
    assert stats["frames_written"] <= len(observations) + 3
    assert stats["bytes_per_transition"] <= 7_500
    batch = memory.sample(2_000)
    rows = _by_reward(batch)
    assert len(rows) > 0.9 * len(rewards)
    for reward, row in rows.items():
        t = int(reward)
        np.testing.assert_array_equal(batch["obs"][row], observations[t])
        np.testing.assert_array_equal(batch["next_obs"][row], observations[t + 1])
        assert batch["discounts"][row] == pytest.approx(0.0 if life_lost[t] else 0.99)


def test_prioritized_sampling_follows_the_td_errors() -> None:
    observations = [np.array([t], dtype=np.float32) for t in range(11)]
    episode = _episode(observations, rewards=[float(t) for t in range(10)], terminated=True)
    memory = ReplayMemory(capacity=16, n_step=1, gamma=GAMMA, prioritized=True, alpha=1.0, seed=0)
    memory.add([episode_chunk(episode, stacked=False)])
    batch = memory.sample(10)
    np.testing.assert_allclose(batch["weights"], 1.0)  # new transitions share the max priority
    errors = np.where(batch["rewards"] == 7.0, 100.0, 1.0)
    memory.update_priorities(batch["indices"], errors)
    again = memory.sample(1_000)
    assert np.mean(again["rewards"] == 7.0) > 0.8
    # Importance weights (N P(i))^-0.4 / max: the frequent one weighs 100^-0.4 of the rare ones.
    common, rare = (
        again["weights"][again["rewards"] == 7.0],
        again["weights"][again["rewards"] != 7.0],
    )
    assert rare.size and rare.min() == pytest.approx(1.0)
    assert common.max() == pytest.approx(100**-0.4, rel=1e-3)


@pytest.mark.usefixtures("ray_local")
def test_sharded_actors_add_sample_save_and_restore(tmp_path) -> None:
    replay = Replay.create(num_shards=2, capacity=200, seed=0, n_step=1, gamma=GAMMA)
    other = Replay.create(num_shards=2, capacity=200, seed=0, n_step=1, gamma=GAMMA)
    try:
        chunks = []
        for e in range(6):
            obs = [np.array([e, t], dtype=np.float32) for t in range(5)]
            chunks.append(
                episode_chunk(
                    # Fixed ids: episodes go to shards by a hash of their id, and random ids
                    # put all six on one shard about once in 32 runs.
                    _episode(obs, rewards=[float(e)] * 4, terminated=True, id_=f"episode-{e}"),
                    stacked=False,
                )
            )
        sizes = replay.add(chunks)
        assert sum(sizes.values()) == 24 and len(sizes) == 2  # the episodes spread over both
        batch = replay.sample(32)
        assert batch["obs"].shape == (32, 2) and set(batch["shards"]) == {0, 1}
        np.testing.assert_array_equal(batch["obs"][:, 0], batch["rewards"])  # rows stay whole
        several = replay.collect(replay.sample_async(10, count=3))  # one round trip, 3 batches
        assert len(several) == 3
        for minibatch in several:
            assert minibatch["obs"].shape == (10, 2) and set(minibatch["shards"]) == {0, 1}
            np.testing.assert_array_equal(minibatch["obs"][:, 0], minibatch["rewards"])
        replay.save(str(tmp_path))
        other.restore(str(tmp_path))
        assert other.stats()["size"] == 24
        assert other.stats()["bytes_per_transition"] == replay.stats()["bytes_per_transition"]
    finally:
        replay.kill()
        other.kill()


def test_vector_chunks_store_every_step_of_a_vector_env_once_and_exactly() -> None:
    # Three Breakouts cut at 40 steps: episodes end and restart inside fragments and at their
    # borders; every real step must come back from the memory as it was played.
    env = envs.make_for_rllib("rldojo/Breakout-v0", {"num_envs": 3, "max_episode_steps": 40})
    obs, _ = env.reset(seed=0)
    recorder = VectorChunks(3, obs.shape[2:], obs.shape[1])
    recorder.start(obs)
    memory = ReplayMemory(capacity=1_000, n_step=1, gamma=GAMMA, seed=0)
    rng = np.random.default_rng(0)
    # A still frame can look the same under different actions: each look, every outcome seen.
    expected: dict[bytes, set[tuple[int, float, float]]] = {}
    restarting = np.zeros(3, dtype=bool)
    real_steps = 0
    for t in range(150):
        actions = rng.integers(3, size=3)
        new_obs, rewards, terminated, truncated, _ = env.step(actions)
        ended = terminated | truncated
        recorder.record(new_obs, actions, rewards, terminated, ended=ended, starts=restarting)
        real_steps += int((~restarting).sum())
        for i in np.flatnonzero(~restarting):
            key = obs[i].tobytes() + new_obs[i].tobytes()
            outcome = (int(actions[i]), float(rewards[i]), 0.0 if terminated[i] else GAMMA)
            expected.setdefault(key, set()).add(outcome)
        obs, restarting = new_obs, ended
        if t % 16 == 15:
            memory.add(recorder.cut())
    memory.add(recorder.cut())
    env.close()
    stats = memory.stats()
    assert stats["size"] == real_steps > 300  # one transition per real step
    assert stats["frames_written"] <= stats["size"] + 3 * 8  # one frame per step (+ starts)
    batch = memory.sample(1_500)
    seen = set()
    for row in range(1_500):
        key = batch["obs"][row].tobytes() + batch["next_obs"][row].tobytes()
        outcome = (
            int(batch["actions"][row]),
            float(batch["rewards"][row]),
            round(float(batch["discounts"][row]), 6),
        )
        assert outcome in expected[key]
        seen.add(key)
    assert len(seen) > 0.85 * len(expected)


def _numbered_chunks(episodes: range, steps: int) -> list:
    """Vector episodes whose rows say where they come from: obs (e, t), reward 1000 e + t.
    Their ids are fixed, so the shards they hash to are too (random ids put all of a few
    episodes on one shard now and then, leaving the other without rings)."""
    chunks = []
    for e in episodes:
        obs = [np.array([e, t], dtype=np.float32) for t in range(steps + 1)]
        rewards = [1000.0 * e + t for t in range(steps)]
        episode = _episode(obs, rewards=rewards, terminated=True, id_=f"numbered-{e}")
        chunks.append(episode_chunk(episode, stacked=False))
    return chunks


def _assert_rows_whole(batch: dict[str, np.ndarray]) -> None:
    """Each row is one transition: no field of it comes from another (a torn read)."""
    np.testing.assert_array_equal(1000 * batch["obs"][:, 0] + batch["obs"][:, 1], batch["rewards"])
    np.testing.assert_array_equal(batch["next_obs"][:, 0], batch["obs"][:, 0])
    np.testing.assert_array_equal(batch["next_obs"][:, 1], batch["obs"][:, 1] + 1)


@pytest.mark.usefixtures("ray_local")
def test_shared_sampler_reads_whole_rows_while_the_actor_overwrites_them(tmp_path) -> None:
    replay = Replay.create(num_shards=2, capacity=64, seed=0, n_step=1, gamma=GAMMA)
    try:
        assert SharedSampler.connect(replay) is None  # nothing stored yet: no rings to map
        held = replay.add(_numbered_chunks(range(8), steps=10))
        assert sorted(held) == [0, 1]  # both shards hold rows, so both have rings to map
        sampler = SharedSampler.connect(replay, seed=0)
        assert sampler is not None
        batch = sampler.empty_batch(16)
        assert batch["obs"].shape == (16, 2) and batch["obs"].dtype == np.float32

        # A writer wraps the 32-row rings about 40 times while the learner's side reads.
        writer = threading.Thread(
            target=lambda: [
                replay.add(_numbered_chunks(range(e, e + 4), 10)) for e in range(8, 400, 4)
            ]
        )
        writer.start()
        draws = 0
        while writer.is_alive() or draws < 50:
            sampler.sample_into(batch)
            _assert_rows_whole(batch)
            draws += 1
        writer.join()
        assert replay.stats()["added"] == 400 * 10

        # A restore gives the shards new rings; the sampler maps them and reads on.
        replay.save(str(tmp_path))
        replay.restore(str(tmp_path))
        sampler.sample_into(batch)
        _assert_rows_whole(batch)
        assert batch["obs"][:, 0].min() >= 300  # only recent episodes are left
    finally:
        replay.kill()
    prioritized = Replay.create(num_shards=1, capacity=64, seed=0, prioritized=True)
    try:
        prioritized.add(_numbered_chunks(range(2), steps=5))
        assert SharedSampler.connect(prioritized) is None  # its sum tree lives in the actor
    finally:
        prioritized.kill()
