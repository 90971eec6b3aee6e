"""DQN (book 5.2, 6.2): the loss by hand, config and presets, real iterations, checkpoints."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

import algorithms
import envs
from algorithms.common import metrics
from algorithms.common.devices import learner_gpus
from algorithms.common.replay_chunks import VectorChunks, episode_chunk
from algorithms.common.replay_shards import Replay
from algorithms.dqn import PRESETS, DQNConfig
from algorithms.dqn_learner import (
    CUDA_GRAPH,
    GRADIENT_NORM,
    QF_LOSS,
    UPDATES,
    UPDATES_PER_SECOND,
    dqn_loss,
)
from algorithms.dqn_rl_module import DQNTorchRLModule
from algorithms.evaluation import MODULE_PATH, evaluate
from service.jobdir.checkpoints import Checkpoint
from service.storage import Storage

# Three transitions: Q(s, .) of the online net, Q_target(s', .), and what the batch holds.
Q = torch.tensor([[2.0, 5.0], [1.0, 3.0], [0.0, -1.0]], requires_grad=True)
Q_NEXT_TARGET = torch.tensor([[1.0, 2.0], [3.0, 0.0], [7.0, 7.0]])
BATCH = {
    "actions": torch.tensor([0, 1, 0]),
    "rewards": torch.tensor([1.0, 0.0, 2.0]),
    "discounts": torch.tensor([0.9, 0.9, 0.0]),  # the third transition is terminal
    "weights": torch.ones(3),
}


def test_loss_by_hand() -> None:
    # y = r + discount * max Q_target(s') = (1 + 0.9*2, 0 + 0.9*3, 2) = (2.8, 2.7, 2.0)
    # Q(s, a) = (2, 3, 0), so the TD errors are (0.8, -0.3, 2.0).
    loss, td = dqn_loss(Q, Q_NEXT_TARGET, BATCH, kind="huber")
    torch.testing.assert_close(td, torch.tensor([0.8, -0.3, 2.0]))
    # Huber: 0.5*0.64, 0.5*0.09, 2.0 - 0.5 -> mean(0.32, 0.045, 1.5)
    assert loss.item() == pytest.approx((0.32 + 0.045 + 1.5) / 3, abs=1e-6)
    mse, _ = dqn_loss(Q, Q_NEXT_TARGET, BATCH, kind="mse")
    assert mse.item() == pytest.approx((0.64 + 0.09 + 4.0) / 3, abs=1e-6)
    # The gradient reaches only the taken actions' Q values: d huber / d Q(s, a) = -clip(td).
    loss.backward()
    torch.testing.assert_close(Q.grad, torch.tensor([[-0.8, 0.0], [0.0, 0.3], [-1.0, 0.0]]) / 3)


def test_loss_by_hand_double_q_and_importance_weights() -> None:
    # The online net prefers a' = (0, 1, 1) in s'; the target net values them (1, 0, 7).
    q_next_online = torch.tensor([[9.0, 0.0], [0.0, 9.0], [0.0, 9.0]])
    _, td = dqn_loss(Q, Q_NEXT_TARGET, BATCH, kind="mse", q_next_online=q_next_online)
    # y = (1 + 0.9*1, 0 + 0.9*0, 2) = (1.9, 0, 2) -> td = (-0.1, -3, 2)
    torch.testing.assert_close(td, torch.tensor([-0.1, -3.0, 2.0]))
    weighted = {**BATCH, "weights": torch.tensor([1.0, 0.5, 0.0])}
    loss, _ = dqn_loss(Q, Q_NEXT_TARGET, weighted, kind="mse")
    assert loss.item() == pytest.approx((0.64 + 0.5 * 0.09 + 0.0) / 3, abs=1e-6)


def test_config_defaults_presets_and_validation() -> None:
    config = DQNConfig()
    book = PRESETS["book_cartpole"].values
    assert (
        config.replay_capacity,
        config.learning_starts,
        config.train_batch_size_per_learner,
    ) == (
        book["replay_capacity"],
        book["learning_starts"],
        book["train_batch_size_per_learner"],
    )
    assert (config.loss, config.hidden_sizes, config.target_update_freq) == ("mse", [24, 24], 0)
    # An Atari id gets the book's Breakout preset; the user's values win over it.
    atari = algorithms.build("dqn", "rldojo/Breakout-v0", {"lr": 3e-4})
    assert (atari.lr, atari.replay_capacity, atari.learning_starts, atari.loss) == (
        3e-4,
        100_000,
        50_000,
        "huber",
    )
    assert atari.life_loss_terminal and atari.grad_clip == 10.0
    # Atari games step in ale-py's C++ vector env, 32 per EnvRunner, at the book's update ratio.
    assert (atari.gym_env_vectorize_mode, atari.num_envs_per_env_runner) == (
        "vector_entry_point",
        32,
    )
    assert atari.updates_per_env_step == 1.0 and atari.acting_dtype == "auto"
    reference = algorithms.build("dqn", "rldojo/Breakout-v0", {"gym_env_vectorize_mode": "sync"})
    assert reference.gym_env_vectorize_mode == "sync"  # the user's choice outlives the preset
    tuned = algorithms.build("dqn", "CartPole-v1", {"preset": "tuned_cartpole", "n_step": 5})
    assert (tuned.double_q, tuned.dueling, tuned.n_step) == (True, True, 5)
    assert algorithms.chosen_preset("dqn", "rldojo/Atari-v0", {}) == "book_breakout"
    assert algorithms.chosen_preset("dqn", "CartPole-v1", {"preset": "auto"}) == "book_cartpole"
    # The resolved config survives Tune's dict round trip.
    again = DQNConfig().update_from_dict(atari.to_dict())
    assert (again.lr, again.learning_starts, again.num_envs_per_env_runner) == (3e-4, 50_000, 32)
    for bad, message in (
        ({"n_step": 0}, "n_step=0"),
        ({"gamma": 2.0}, "gamma=2.0"),
        ({"replay_capacity": 10}, "replay_capacity=10"),
        ({"hidden_sizes": [24, 0]}, "hidden_sizes"),
        ({"epsilon_final": 0.5, "epsilon_initial": 0.1}, "final"),
        ({"loss": "l1"}, "loss='l1'"),
        ({"acting_dtype": "float16"}, "acting_dtype='float16'"),
    ):
        with pytest.raises(ValueError, match=message):
            DQNConfig().environment("CartPole-v1").training(**bad).validate()
    found = algorithms.hyperparameters("dqn")
    assert {
        "preset",
        "double_q",
        "dueling",
        "n_step",
        "prioritized_replay",
        "replay_shards",
    } <= set(found)
    assert all(h.description for h in found.values())
    assert found["replay_capacity"].default == 2_000


def test_learner_gpu_placement() -> None:
    assert learner_gpus({"CPU": 16.0, "GPU": 1.0}) == 1
    assert learner_gpus({"CPU": 2.0}) == 0
    assert learner_gpus({"CPU": 2.0, "GPU": 0.5}) == 0
    assert DQNConfig().num_gpus_per_learner == 0  # RLlib's own default: a plain number


def _cartpole(**training: object) -> DQNConfig:
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .training(learning_starts=100, **training)  # type: ignore[arg-type]
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=0)
    )


@pytest.mark.usefixtures("ray_local")
def test_one_iteration_on_cartpole_and_checkpoint_round_trip(tmp_path) -> None:
    config = _cartpole(
        double_q=True, dueling=True, n_step=3, prioritized_replay=True, overlap_sampling=True
    )
    config.validate()
    assert config.num_gpus_per_learner == 0  # the test cluster has no GPU: CPU learner
    algo = config.build_algo()
    try:
        result = metrics.flatten(algo.train())
        assert all(key in result for key in metrics.REQUIRED)
        assert result[metrics.ENV_STEPS] >= 200
        assert np.isfinite(result[f"{metrics.LEARNER}/{QF_LOSS}"])
        assert result[f"{metrics.LEARNER}/{UPDATES_PER_SECOND}"] > 0
        assert "timers/learner_update_timer" in result and "timers/target_network_update" in result
        assert result["replay_size"] == algo.replay_stats()["size"] > 0
        obs = torch.tensor(np.random.default_rng(0).normal(size=(5, 4)), dtype=torch.float32)
        q_before = algo.get_module(DEFAULT_MODULE_ID).compute_q_values({"obs": obs})["q_values"]
        replay_before = algo.replay_stats()
        algo.save_to_path(str(tmp_path))
    finally:
        algo.stop()
    assert (tmp_path / "replay" / "shard_0.npz").is_file()
    # What `rldojo pull` brings by default (the archive route's stream) plays the policy alone.
    checkpoint = Checkpoint("t-1", "t", 1, None, None, str(tmp_path))
    packed = b"".join(Storage(str(tmp_path.parent)).job("j").archive(checkpoint))
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        tar.extractall(tmp_path.parent / "pulled", filter="data")
    light = tmp_path.parent / "pulled" / tmp_path.name
    assert not (light / "replay").exists() and not (light / "env_runner").exists()
    assert (light / MODULE_PATH / "module_state.pkl").stat().st_size < (
        (tmp_path / MODULE_PATH / "module_state.pkl").stat().st_size * 0.6  # no target network
    )
    assert len(evaluate(light, episodes=2, seed=0).returns) == 2
    greedy = RLModule.from_checkpoint(str(light / MODULE_PATH))
    torch.testing.assert_close(greedy.compute_q_values({"obs": obs})["q_values"], q_before)
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        q_after = restored.get_module(DEFAULT_MODULE_ID).compute_q_values({"obs": obs})["q_values"]
        torch.testing.assert_close(q_before, q_after)
        assert restored.replay_stats()["size"] == replay_before["size"]  # type: ignore[attr-defined]
        # It trains on from where it stopped, starting from the restored replay memory.
        steps = metrics.flatten(restored.train())[metrics.ENV_STEPS]
        assert steps >= result[metrics.ENV_STEPS] + 200
    finally:
        restored.stop()


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize(
    ("env_id", "env_config", "vectorize"),
    [
        # A life loss ends the episode, so a 150-step iteration finishes some and reports returns.
        ("rldojo/Breakout-v0", {"terminal_on_life_loss": True}, "vector_entry_point"),
        # The same through the reference Gymnasium pipeline and RLlib's own sampling loop.
        ("rldojo/Breakout-v0", {"terminal_on_life_loss": True}, "sync"),
        # Another ALE game through the same pipeline, as a user names it; games cut at 20 steps.
        ("rldojo/Atari-v0", {"game": "Pong", "max_episode_steps": 20}, "vector_entry_point"),
    ],
)
def test_one_iteration_on_atari_with_a_small_replay(
    env_id: str, env_config: dict, vectorize: str
) -> None:
    config = (
        DQNConfig()
        .environment(env_id, env_config=env_config)
        .training(**PRESETS["book_breakout"].values)
        .training(
            replay_capacity=500,
            learning_starts=64,
            train_batch_size_per_learner=8,
            updates_per_env_step=0.25,
            target_update_freq=50,
            # 2 games for 64 steps per sampling call (the preset: 32 for 8), so that some
            # episodes end within the iteration and report their returns.
            num_envs_per_env_runner=2,
            rollout_fragment_length=64,
            gym_env_vectorize_mode=vectorize,  # type: ignore[arg-type]
        )
        .reporting(min_sample_timesteps_per_iteration=150)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result = metrics.flatten(algo.train())
        assert all(key in result for key in metrics.REQUIRED)
        assert np.isfinite(result[f"{metrics.LEARNER}/{QF_LOSS}"])
        stats = algo.replay_stats()
        assert stats["size"] >= 100
        assert stats["added"] == result[metrics.ENV_STEPS]  # every step reached the replay
        # Frames are stored once: about one 84x84 frame per env step, not four.
        assert stats["frames_written"] <= stats["added"] + 4 * (result[metrics.EPISODES] + 1)
        module = algo.get_module(DEFAULT_MODULE_ID)
        obs = torch.zeros(2, 4, 84, 84, dtype=torch.uint8)
        assert module.forward_inference({"obs": obs})["actions"].shape == (2,)
    finally:
        algo.stop()


@pytest.mark.parametrize("acting_dtype", ["float32", "bfloat16"])
def test_exploration_acts_greedily_with_the_latest_weights(acting_dtype: str) -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    module = DQNTorchRLModule(
        observation_space=space,
        action_space=gym.spaces.Discrete(3),
        model_config={"hidden_sizes": [16], "acting_dtype": acting_dtype},
    )
    obs = torch.randint(0, 255, (6, 4, 84, 84), dtype=torch.uint8)

    def prefer(action: int) -> None:  # synced weights whose Q-values clearly favour `action`
        state = module.get_state()
        bias = torch.zeros(3)
        bias[action] = 100.0
        state["q_net.advantage.bias"] = bias
        module.set_state(state)

    module.epsilon = 0.0
    for action in (2, 0, 1):
        prefer(action)
        assert module.explore_actions(obs).tolist() == [action] * 6
    module.epsilon = 1.0  # all random: every action shows up
    assert set(module.explore_actions(obs.repeat(20, 1, 1, 1)).tolist()) == {0, 1, 2}


# ---- the learner's replay loop ----------------------------------------------------------------


def _filled_replay(env_id: str, *, prioritized: bool = False) -> Replay:
    """A replay memory holding 400 transitions of real random play of `env_id`."""
    replay = Replay.create(
        num_shards=1, capacity=1_000, seed=0, n_step=1, gamma=0.99, prioritized=prioritized
    )
    env = envs.make_for_rllib(env_id, {"num_envs": 4})
    obs, _ = env.reset(seed=0)
    recorder = VectorChunks(4, obs.shape[2:], 4) if obs.ndim == 4 else None
    if recorder is not None:  # frame stacks: the vector recorder
        recorder.start(obs)
    rng, restarting, chunks = np.random.default_rng(0), np.zeros(4, dtype=bool), []
    episodes = [SingleAgentEpisode() for _ in range(4)]
    for i, episode in enumerate(episodes):
        episode.add_env_reset(observation=obs[i])
    for _ in range(100):
        actions = rng.integers(env.single_action_space.n, size=4)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        if recorder is not None:
            ended = terminated | truncated
            recorder.record(obs, actions, rewards, terminated, ended=ended, starts=restarting)
            restarting = ended
            continue
        for i, episode in enumerate(episodes):  # vectors: RLlib episodes, as EnvRunners send
            if not episode.is_reset:  # the vector's reset step after an episode's end
                episode.add_env_reset(observation=obs[i])
                continue
            done = {"terminated": bool(terminated[i]), "truncated": bool(truncated[i])}
            episode.add_env_step(obs[i], int(actions[i]), float(rewards[i]), **done)
            if episode.is_done:
                chunks.append(episode_chunk(episode, stacked=False))
                episodes[i] = SingleAgentEpisode()
    chunks += recorder.cut() if recorder is not None else []
    chunks += [episode_chunk(e, stacked=False) for e in episodes if len(e)]
    replay.add(chunks)
    env.close()
    return replay


def _learner(env_id: str, gpus: int = 0, **training: Any) -> Any:
    config = (
        algorithms.build("dqn", env_id, {"train_batch_size_per_learner": 16, **training})
        .learners(num_gpus_per_learner=gpus)
        .debugging(seed=0)
    )
    return config.build_learner(env=envs.make(env_id))


def _learn(learner: Any, replay: Replay, updates: int) -> dict[str, Any]:
    """One `learn_from_replay` call; its metrics as values."""
    result = learner.learn_from_replay(replay, num_updates=updates, timesteps={})
    return MetricsLogger.peek_results(result)


def _weights(learner: Any) -> dict[str, np.ndarray]:
    return learner.get_state(components="rl_module")["rl_module"][DEFAULT_MODULE_ID]


@pytest.mark.usefixtures("ray_local")
def test_the_learner_loop_trains_on_its_own_draws_and_reports_once_per_call() -> None:
    replay = _filled_replay("CartPole-v1")
    learner = _learner("CartPole-v1")
    try:
        before = _weights(learner)
        result = _learn(learner, replay, 25)
        after = _weights(learner)
        module = result[DEFAULT_MODULE_ID]
        assert (
            module[UPDATES] == 25
            and np.isfinite(module[QF_LOSS])
            and module[UPDATES_PER_SECOND] > 0
        )
        assert np.isfinite(result[ALL_MODULES][GRADIENT_NORM])
        assert module[CUDA_GRAPH] == 0.0  # eager on the CPU
        assert any(not np.allclose(before[k], after[k]) for k in before if k.startswith("q_net"))
        for key in before:  # the target net moves only at `update_target`
            if key.startswith("target_q_net"):
                np.testing.assert_array_equal(before[key], after[key])
        # The reported loss is the mean over the call's updates: with a vanishing lr every
        # update sees the same net, so one update of a call reports what 50 report on average.
        frozen = _learner("CartPole-v1", lr=1e-30)
        one = [_learn(frozen, replay, 1)[DEFAULT_MODULE_ID][QF_LOSS] for _ in range(200)]
        many = _learn(frozen, replay, 50)[DEFAULT_MODULE_ID]
        assert many[UPDATES] == 50
        assert many[QF_LOSS] == pytest.approx(np.mean(one), rel=0.25)
    finally:
        replay.kill()


@pytest.mark.usefixtures("ray_local")
def test_the_learner_loop_through_the_actor_updates_priorities() -> None:
    replay = _filled_replay("CartPole-v1", prioritized=True)
    learner = _learner("CartPole-v1", prioritized_replay=True)
    try:
        before = replay.sample(64)["weights"]
        assert _learn(learner, replay, 20)[DEFAULT_MODULE_ID][UPDATES] == 20
        np.testing.assert_allclose(before, 1.0)  # new transitions share one priority...
        assert replay.sample(256)["weights"].min() < 1.0  # ...until TD errors set them apart
    finally:
        replay.kill()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("env_id", ["CartPole-v1", "rldojo/Breakout-v0"])
def test_cuda_graph_updates_give_the_eager_updates_weights(env_id: str) -> None:
    replay = _filled_replay(env_id)
    graphed = _learner(env_id, gpus=1, cuda_graph=True, double_q=True, grad_clip=1.0)
    eager = _learner(env_id, gpus=1, cuda_graph=False, double_q=True, grad_clip=1.0)
    try:
        eager.set_state(graphed.get_state())  # the same start, optimizer state included
        results = {}
        for name, learner in (("graph", graphed), ("eager", eager)):
            # Both draw the same minibatches (same seed, same memory): 2 calls, a target copy
            # between them, the graph captured in the first and replayed in both.
            _learn(learner, replay, 20)
            learner.update_target()
            results[name] = _learn(learner, replay, 20)
        for key, value in _weights(eager).items():
            torch.testing.assert_close(_weights(graphed)[key], value, rtol=1e-4, atol=1e-5)
        losses = [results[name][DEFAULT_MODULE_ID][QF_LOSS] for name in ("graph", "eager")]
        assert losses[0] == pytest.approx(losses[1], rel=1e-4)
        graphed = [results[name][DEFAULT_MODULE_ID][CUDA_GRAPH] for name in ("graph", "eager")]
        assert graphed == [1.0, 0.0]  # the first really replayed a captured graph
    finally:
        replay.kill()
