"""Environment construction: single envs, vectorised envs, pixel observations and normalisation.

:func:`make_task_vec` is the one factory for the envs a config trains, evaluates and clones
on: state observations, or (``obs.mode: pixels``) the stacked camera frames of
:func:`wrap_pixels`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AddRenderObservation, FrameStackObservation, GrayscaleObservation, TransformObservation
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from optiq.errors import OptiqError
from optiq.rendering import configure_mujoco_gl, ensure_render_backend


def check_env_id(env_id: str) -> None:
    """Fail with a clear message if Gymnasium does not know ``env_id``."""
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise OptiqError(f"unknown Gymnasium env '{env_id}': {exc} (check the id, e.g. Hopper-v5)") from None


def make_env(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    check_env_id(env_id)
    configure_mujoco_gl()  # before the first MuJoCo env imports mujoco, which fixes its GL backend
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
    configure_mujoco_gl()  # as make_env
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        vec_env_cls=DummyVecEnv,
        wrapper_class=wrapper_class,
        env_kwargs=env_kwargs,
    )


def pixel_mode(config: dict[str, Any]) -> bool:
    return config.get("obs", {}).get("mode") == "pixels"


def fast_render_settings(env: gym.Env) -> None:
    """A smaller shadow map and no multisampling: ~4x faster MuJoCo rendering, fine for a policy or a viewer."""
    model = env.unwrapped.model
    model.vis.quality.shadowsize = 1024
    model.vis.quality.offsamples = 0


def wrap_pixels(env: gym.Env, obs: dict[str, Any]) -> gym.Env:
    """Replace ``env``'s observations by its last ``frame_stack`` camera frames: uint8 (C*k, H, W).

    ``env`` renders ``rgb_array`` frames of ``obs["height"] x obs["width"]`` (MuJoCo's make
    kwargs). Frames are stacked channel-first, not (H, W, C*k): SB3 takes such images as
    they are (no VecTransposeImage), so the env, the policy and saved demos share one shape.
    """
    _require_render_backend()
    fast_render_settings(env)  # before the first render creates the GL context
    # No shadows or reflections in observations: on this 2-core CPU (software GL) Hopper-v5
    # frames render 3.4x faster (96 -> 329/s); InvertedPendulum-v5's are unchanged, pixel for pixel.
    env.unwrapped.model.light_castshadow[:] = 0
    env.unwrapped.model.mat_reflectance[:] = 0
    env = AddRenderObservation(env, render_only=True)
    if obs["grayscale"]:
        env = GrayscaleObservation(env)
    env = FrameStackObservation(env, obs["frame_stack"])  # (k, H, W) or (k, H, W, 3)
    if not obs["grayscale"]:
        k, h, w, c = env.observation_space.shape
        space = gym.spaces.Box(0, 255, (k * c, h, w), np.uint8)
        env = TransformObservation(env, lambda o: o.transpose(0, 3, 1, 2).reshape(space.shape), space)  # copies
    return env


def _require_render_backend() -> None:
    if ensure_render_backend() is None:
        raise OptiqError(
            "pixel observations need headless OpenGL: no MUJOCO_GL backend works (install libegl1 or libosmesa6)"
        )


def pixel_render_kwargs(obs: dict[str, Any]) -> dict[str, Any]:
    # "track": the model's camera that follows the robot (Gymnasium 1.4's default camera stays put,
    # so a locomotion policy would watch itself leave the picture); InvertedPendulum has none and
    # keeps the default view.
    return {"render_mode": "rgb_array", "width": obs["width"], "height": obs["height"], "camera_name": "track"}


def make_pixel_env(env_id: str, obs: dict[str, Any]) -> gym.Env:
    """One env with the pixel observations of :func:`wrap_pixels` (for videos of pixel policies)."""
    return wrap_pixels(make_env(env_id, **pixel_render_kwargs(obs)), obs)


def make_task_vec(config: dict[str, Any], n_envs: int, seed: int, wrapper_class: Any = None) -> VecEnv:
    """:func:`make_vec` for ``config``'s env with its observations: state, or pixels (``obs.mode``).

    ``wrapper_class`` wraps each env outermost, so e.g. imitation's RolloutInfoWrapper sees pixels.
    """
    if not pixel_mode(config):
        return make_vec(config["env_id"], n_envs, seed, wrapper_class=wrapper_class)
    obs = config["obs"]

    def wrap(env: gym.Env) -> gym.Env:
        env = wrap_pixels(env, obs)
        return wrapper_class(env) if wrapper_class is not None else env

    return make_vec(config["env_id"], n_envs, seed, wrapper_class=wrap, env_kwargs=pixel_render_kwargs(obs))


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


@contextmanager
def plain_statistics(venv: VecNormalize) -> Iterator[VecNormalize]:
    """Within the block, ``venv`` holds plain SB3 ``RunningMeanStd`` statistics (for pickling).

    A saved VecNormalize pickles its statistics objects; frozen ones would make the file
    unloadable without optiq. Resuming re-freezes them (:func:`freeze_observation_statistics`).
    """
    frozen = venv.obs_rms
    if isinstance(frozen, FrozenRunningMeanStd):
        plain = RunningMeanStd(shape=frozen.mean.shape)
        plain.mean, plain.var, plain.count = frozen.mean.copy(), frozen.var.copy(), float(frozen.count)
        venv.obs_rms = plain
    try:
        yield venv
    finally:
        venv.obs_rms = frozen


def freeze_observation_statistics(venv: VecEnv) -> VecEnv:
    """Stop a VecNormalize's observation statistics from updating (no-op for other envs)."""
    if isinstance(venv, VecNormalize) and not isinstance(venv.obs_rms, FrozenRunningMeanStd):
        venv.obs_rms = FrozenRunningMeanStd.freeze(venv.obs_rms)
    return venv


def random_policy_return(env_id: str, n_episodes: int = 10, seed: int = 0) -> float:
    """Mean return of uniformly random actions: the 0 of normalised scores."""
    env = make_env(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))
