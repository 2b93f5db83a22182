"""Shared fixtures: tiny configs and synthetic demos so unit tests run in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from imitation.data import types

import optiq  # noqa: F401  (sets MUJOCO_GL before any env is made)
from optiq.config import load_env_config

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "demos.n_episodes": 2,
    "bc.n_epochs": 2,
    "bc.checkpoint_every": 1,
    "bc.batch_size": 64,
    "finetune.total_timesteps": 1024,
    "finetune.checkpoint_freq": 512,
    "finetune.ppo.hyperparams.n_steps": 256,
    "finetune.ppo.hyperparams.batch_size": 64,
    "finetune.ppo.hyperparams.n_epochs": 1,
    "finetune.ppo.policy_kwargs.net_arch": {"pi": [32, 32], "vf": [32, 32]},
    "finetune.sac.policy_kwargs.net_arch": [32, 32],
    "finetune.sac.hyperparams.learning_starts": 100,
    "eval.eval_freq": 512,
    "eval.n_eval_episodes": 1,
    "eval.final_episodes": 1,
    "eval.video_length": 20,
}


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    return load_env_config("Hopper-v5", "quick", overrides=TINY)


def synthetic_trajectories(
    n: int = 4, length: int = 30, obs_dim: int = 11, act_dim: int = 3, seed: int = 0
) -> list[types.TrajectoryWithRew]:
    rng = np.random.default_rng(seed)
    return [
        types.TrajectoryWithRew(
            obs=rng.normal(size=(length + 1, obs_dim)).astype(np.float32),
            acts=rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32),
            infos=None,
            terminal=bool(i % 2),
            rews=rng.normal(size=length).astype(np.float32),
        )
        for i in range(n)
    ]


@pytest.fixture
def synthetic_demos() -> list[types.TrajectoryWithRew]:
    return synthetic_trajectories()
