"""Saved policies as artifacts: an SB3 model zip plus optional VecNormalize statistics.

Every policy optiq writes (expert, BC checkpoints, fine-tuned models) is stored this way,
so evaluation, rollouts and video treat them alike.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from optiq.algos import ALGO_CLASSES, make_eval_venv
from optiq.envs import make_task_vec
from optiq.errors import OptiqError


@dataclass(frozen=True)
class PolicyFiles:
    """Where a saved policy lives: the model zip and its observation statistics (if any)."""

    model: Path
    vecnormalize: Path | None
    algo: str
    model_class: str | None = None  # an extension of the algorithm (HybridPPO, DemoSAC), if any
    # Trained on raw observations on purpose (AIRL/GAIL), even where finetune.<algo>.normalize is on.
    raw_obs: bool = False

    def to_json(self) -> dict[str, Any]:
        norm = str(self.vecnormalize) if self.vecnormalize else None
        data = {"model": str(self.model), "vecnormalize": norm, "algo": self.algo, "model_class": self.model_class}
        return {**data, "raw_obs": True} if self.raw_obs else data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicyFiles:
        norm = data.get("vecnormalize")
        return cls(
            Path(data["model"]),
            Path(norm) if norm else None,
            data["algo"],
            data.get("model_class"),
            bool(data.get("raw_obs", False)),
        )


def _model_class(files: PolicyFiles) -> type[BaseAlgorithm]:
    if files.model_class:
        from optiq.rl.demo_sac import DemoSAC
        from optiq.rl.hybrid_ppo import HybridPPO

        extensions: dict[str, type[BaseAlgorithm]] = {"HybridPPO": HybridPPO, "DemoSAC": DemoSAC}
        if files.model_class not in extensions:
            raise OptiqError(
                f"unknown model class '{files.model_class}' for {files.model}; known: {', '.join(extensions)}"
            )
        return extensions[files.model_class]
    return ALGO_CLASSES[files.algo]


def load_model(files: PolicyFiles, device: str = "auto") -> BaseAlgorithm:
    """Load the SB3 model; a missing, truncated or foreign file is a one-line error."""
    if files.algo not in ALGO_CLASSES:
        raise OptiqError(
            f"unknown algorithm '{files.algo}' for {files.model}; choose one of: {', '.join(ALGO_CLASSES)}"
        )
    if not files.model.is_file():
        raise OptiqError(f"model file not found: {files.model} (check the path or rerun the stage that writes it)")
    if not zipfile.is_zipfile(files.model):
        raise OptiqError(f"corrupt or truncated model file: {files.model} is not a valid SB3 zip (delete it and rerun)")
    try:
        return _model_class(files).load(str(files.model), device=device)
    except Exception as exc:
        raise OptiqError(
            f"cannot load {files.model} as a {files.algo.upper()} model: {type(exc).__name__}: {exc} "
            "(was it saved by another algorithm or library version?)"
        ) from None


def check_spaces(model: BaseAlgorithm, venv: VecEnv, what: str) -> None:
    """Fail clearly when a saved policy does not fit the env's observation/action spaces."""
    if (
        model.observation_space.shape != venv.observation_space.shape
        or model.action_space.shape != venv.action_space.shape
    ):
        raise OptiqError(
            f"{what} expects obs {model.observation_space.shape} / action {model.action_space.shape} but the env has "
            f"obs {venv.observation_space.shape} / action {venv.action_space.shape} (use a policy trained on this env)"
        )


def eval_venv_for(config: dict[str, Any], files: PolicyFiles, seed: int, n_envs: int = 1) -> VecEnv:
    """An evaluation env whose observation preprocessing matches the saved policy."""
    if config["finetune"][files.algo]["normalize"] and files.vecnormalize is None and not files.raw_obs:
        raise OptiqError(
            f"{files.model} was trained with observation normalisation but has no vecnormalize.pkl beside it"
        )
    if files.vecnormalize is None:
        return make_task_vec(config, n_envs, seed)
    return make_eval_venv(config, files.algo, seed, norm_stats_path=files.vecnormalize, n_envs=n_envs)


class RawObsPolicy:
    """Callable policy on raw observations (imitation's rollout API): normalises, then predicts."""

    def __init__(self, model: BaseAlgorithm, vecnormalize: VecNormalize | None, deterministic: bool = True):
        self.model = model
        self.vecnormalize = vecnormalize
        self.deterministic = deterministic

    def __call__(self, obs: np.ndarray, state: Any = None, episode_start: Any = None) -> tuple[np.ndarray, Any]:
        if self.vecnormalize is not None:
            obs = self.vecnormalize.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return actions, None


class TrueStatePolicy:
    """A state policy (imitation's rollout API) acting on the true states of ``venv``'s envs, not on its observations.

    How a state expert or controller records pixel demos: the rollout hands it camera frames,
    which it ignores, reading each MuJoCo env's state observation (``_get_obs``, exactly what
    the state env returns) instead. After an auto-reset the env already holds the new episode.
    """

    def __init__(self, policy: Any, venv: DummyVecEnv):
        self.policy = policy
        self.venv = venv

    def __call__(self, obs: np.ndarray, state: Any = None, episode_start: Any = None) -> tuple[np.ndarray, Any]:
        states = np.stack([env.unwrapped._get_obs() for env in self.venv.envs])
        return self.policy(states, state, episode_start)


def raw_obs_policy(files: PolicyFiles, raw_venv: VecEnv, device: str = "auto") -> RawObsPolicy:
    model = load_model(files, device)
    check_spaces(model, raw_venv, str(files.model))
    vecnorm = None
    if files.vecnormalize is not None:
        vecnorm = VecNormalize.load(str(files.vecnormalize), raw_venv)
        vecnorm.training = False
    return RawObsPolicy(model, vecnorm)
