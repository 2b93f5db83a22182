"""Environment construction: single envs, vectorised envs and observation normalisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from optiq.errors import OptiqError


def check_env_id(env_id: str) -> None:
    """Fail with a clear message if Gymnasium does not know ``env_id``."""
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise OptiqError(f"unknown Gymnasium env '{env_id}': {exc} (check the id, e.g. Hopper-v5)") from None


def make_env(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    check_env_id(env_id)
    return gym.make(env_id, render_mode=render_mode, **kwargs)


def make_vec(
    env_id: str,
    n_envs: int,
    seed: int,
    wrapper_class: Any = None,
    env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """A DummyVecEnv of ``n_envs`` Monitor-wrapped envs seeded ``seed, seed+1, ...``.

    DummyVecEnv, not SubprocVecEnv: MuJoCo steps are cheap, and on 2 cores the policy
    update dominates, so processes add overhead without speed.
    """
    check_env_id(env_id)
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        vec_env_cls=DummyVecEnv,
        wrapper_class=wrapper_class,
        env_kwargs=env_kwargs,
    )


def wrap_normalize(
    venv: VecEnv,
    training: bool,
    gamma: float = 0.99,
    stats_path: str | Path | None = None,
    norm_reward: bool = True,
) -> VecNormalize:
    """Wrap ``venv`` in VecNormalize, loading running statistics from ``stats_path`` if given.

    For evaluation (``training=False``) statistics are frozen and rewards stay raw.
    """
    if stats_path is not None:
        stats_path = Path(stats_path)
        if not stats_path.is_file():
            raise OptiqError(f"normalisation statistics not found: {stats_path} (rerun the stage that writes it)")
        try:
            vecnorm = VecNormalize.load(str(stats_path), venv)
        except Exception as exc:  # pickle errors are many and unhelpful
            raise OptiqError(f"corrupt normalisation statistics {stats_path}: {exc} (delete it and rerun)") from None
    else:
        vecnorm = VecNormalize(venv, norm_obs=True, norm_reward=norm_reward, gamma=gamma)
    vecnorm.training = training
    vecnorm.norm_reward = norm_reward and training
    return vecnorm


class FrozenRunningMeanStd(RunningMeanStd):
    """Observation statistics that no longer update.

    A policy fine-tuned from BC keeps the exact observation preprocessing BC was trained with;
    letting VecNormalize keep updating its running mean/std shifts every input the BC
    actor sees, and was measured here to collapse a 3,200-return BC policy on Hopper-v5 to
    ~750 within 10k steps while its weights were frozen. Reward statistics still update.
    """

    @classmethod
    def freeze(cls, stats: RunningMeanStd) -> FrozenRunningMeanStd:
        frozen = cls(shape=stats.mean.shape)
        frozen.mean, frozen.var, frozen.count = stats.mean.copy(), stats.var.copy(), float(stats.count)
        return frozen

    def copy(self) -> FrozenRunningMeanStd:
        return FrozenRunningMeanStd.freeze(self)

    def update(self, arr: Any) -> None:
        return None

    def update_from_moments(self, batch_mean: Any, batch_var: Any, batch_count: float) -> None:
        return None


def freeze_observation_statistics(venv: VecEnv) -> VecEnv:
    """Stop a VecNormalize's observation statistics from updating (no-op for other envs)."""
    if isinstance(venv, VecNormalize) and not isinstance(venv.obs_rms, FrozenRunningMeanStd):
        venv.obs_rms = FrozenRunningMeanStd.freeze(venv.obs_rms)
    return venv
