"""Which game a job plays, and the published random/human scores that normalize its score.

The human-normalized score (HNS) of a raw game score is `(score - random) / (human - random)`:
0 plays like a uniformly random agent, 1 like the professional human tester.

Source of `REFERENCE_SCORES` (the Atari-57 table every paper since uses): the random and human
columns of Mnih et al., "Human-level control through deep reinforcement learning", Nature 518
(2015), Extended Data Table 2, completed for the 8 games added later (Berzerk, Defender, Phoenix,
Pitfall!, Skiing, Solaris, Surround, Yars' Revenge) by Badia et al., "Agent57: Outperforming the
Atari Human Benchmark", ICML 2020, Table H.1; the same numbers as DeepMind's DQN Zoo
(`dqn_zoo/atari_data.py`). Each is a mean over episodes capped at 108,000 frames.

Everything here is pure Python (no Gymnasium, no ALE): the API, the CLI and the page's listings
call it on stored job specs.

Example:
    >>> game_of("rldojo/Atari-v0", {"game": "ALE/Pong-v5"})
    'pong'
    >>> round(human_normalized("pong", 14.6), 6)
    1.0
"""

from __future__ import annotations

import re
from typing import Any

# game (ALE's ROM name) -> (random agent's score, human tester's score)
REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "alien": (227.8, 7127.7),
    "amidar": (5.8, 1719.5),
    "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3),
    "asteroids": (719.1, 47388.7),
    "atlantis": (12850.0, 29028.1),
    "bank_heist": (14.2, 753.1),
    "battle_zone": (2360.0, 37187.5),
    "beam_rider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4),
    "bowling": (23.1, 160.7),
    "boxing": (0.1, 12.1),
    "breakout": (1.7, 30.5),
    "centipede": (2090.9, 12017.0),
    "chopper_command": (811.0, 7387.8),
    "crazy_climber": (10780.5, 35829.4),
    "defender": (2874.5, 18688.9),
    "demon_attack": (152.1, 1971.0),
    "double_dunk": (-18.6, -16.4),
    "enduro": (0.0, 860.5),
    "fishing_derby": (-91.7, -38.7),
    "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5),
    "gravitar": (173.0, 3351.4),
    "hero": (1027.0, 30826.4),
    "ice_hockey": (-11.2, 0.9),
    "jamesbond": (29.0, 302.8),
    "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2665.5),
    "kung_fu_master": (258.5, 22736.3),
    "montezuma_revenge": (0.0, 4753.3),
    "ms_pacman": (307.3, 6951.6),
    "name_this_game": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6),
    "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6),
    "private_eye": (24.9, 69571.3),
    "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0),
    "road_runner": (11.5, 7845.0),
    "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7),
    "skiing": (-17098.1, -4336.9),
    "solaris": (1236.3, 12326.7),
    "space_invaders": (148.0, 1668.7),
    "star_gunner": (664.0, 10250.0),
    "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3),
    "time_pilot": (3568.0, 5229.2),
    "tutankham": (11.4, 167.6),
    "up_n_down": (533.4, 11693.2),
    "venture": (0.0, 1187.5),
    # The random agent's Video Pinball score is close to the human's: its HNS swings widely.
    "video_pinball": (16256.9, 17667.9),
    "wizard_of_wor": (563.5, 4756.5),
    "yars_revenge": (3092.9, 54576.9),
    "zaxxon": (32.5, 9173.3),
}

# The env ids whose game is fixed, and the one whose game is `env_config["game"]`.
FIXED_GAMES: dict[str, str] = {"rldojo/Breakout-v0": "breakout"}
GAME_PARAMETER_ENVS: dict[str, str] = {"rldojo/Atari-v0": "breakout"}  # id -> default game
# ALE ids: "ALE/Pong-v5", and Gymnasium's older "Pong-v4", "PongNoFrameskip-v4".
_ALE_ID = re.compile(r"^ALE/(?P<name>[A-Za-z0-9_]+)-v\d+$")
_V4_ID = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9]*?)(?:NoFrameskip|Deterministic)?-v[04]$")
_BY_COMPACT = {name.replace("_", ""): name for name in REFERENCE_SCORES}


def compact(game: str) -> str:
    """A game name with case, separators, the `ALE/` prefix and a `-vN` suffix removed.

    Example:
        >>> compact("ALE/SpaceInvaders-v5"), compact("space_invaders")
        ('spaceinvaders', 'spaceinvaders')
    """
    name = re.sub(r"-v\d+$", "", str(game).strip().removeprefix("ALE/"))
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_game(game: str) -> str:
    """ALE's ROM name for a game given as an id, a CamelCase name or a ROM name.

    Example:
        >>> canonical_game("ALE/MontezumaRevenge-v5"), canonical_game("Tetris")
        ('montezuma_revenge', 'tetris')
    """
    found = _BY_COMPACT.get(compact(game))
    if found is not None:
        return found
    name = re.sub(r"-v\d+$", "", str(game).strip().removeprefix("ALE/"))
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")


def game_of(env_id: str, env_config: dict[str, Any] | None = None) -> str | None:
    """The ALE game a job's env plays (its ROM name), None for an env that is not an ALE game.

    Args:
        env_id: The job's env id: `rldojo/Breakout-v0`, `rldojo/Atari-v0`, `ALE/Pong-v5`, ...
        env_config: The job's env_config (`game` picks the game of `rldojo/Atari-v0`).

    Example:
        >>> game_of("ALE/Pong-v5"), game_of("rldojo/Breakout-v0"), game_of("CartPole-v1")
        ('pong', 'breakout', None)
    """
    env_id = str(env_id)
    if env_id in FIXED_GAMES:
        return FIXED_GAMES[env_id]
    if env_id in GAME_PARAMETER_ENVS:
        game = (env_config or {}).get("game") or GAME_PARAMETER_ENVS[env_id]
        return canonical_game(str(game))
    match = _ALE_ID.match(env_id)
    if match is None:
        match = _V4_ID.match(env_id)
        if match is None or compact(match["name"]) not in _BY_COMPACT:
            return None
    return canonical_game(match["name"])


def game_of_spec(spec: dict[str, Any]) -> str | None:
    """`game_of` a job spec's `env` and `env_config`."""
    env_config = spec.get("env_config")
    return game_of(str(spec.get("env")), env_config if isinstance(env_config, dict) else None)


def same_game(game: str | None, wanted: str) -> bool:
    """Whether `game` (a `game_of` answer) is the game a user named (`Pong`, `ALE/Pong-v5`)."""
    return game is not None and compact(game) == compact(wanted)


def human_normalized(game: str | None, score: float) -> float | None:
    """`(score - random) / (human - random)` from `REFERENCE_SCORES`; None if the game has none.

    Example:
        >>> round(human_normalized("breakout", 30.5), 6), human_normalized("tetris", 5.0)
        (1.0, None)
    """
    if game is None:
        return None
    reference = REFERENCE_SCORES.get(canonical_game(game))
    if reference is None:
        return None
    random_score, human_score = reference
    return (float(score) - random_score) / (human_score - random_score)
