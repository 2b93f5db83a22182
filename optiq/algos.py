"""Build SB3 models and their vec-envs from an env's ``finetune.<algo>`` settings.

One factory serves the expert, BC (which trains ``model.policy`` of a model built here)
and fine-tuning, so the BC policy has exactly the RL policy's architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from optiq.envs import make_task_vec, pixel_mode, wrap_normalize
from optiq.errors import OptiqError

ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def algo_class(algo: str) -> type[BaseAlgorithm]:
    if algo not in ALGO_CLASSES:
        raise OptiqError(f"unknown algorithm '{algo}'; choose one of: {', '.join(ALGO_CLASSES)}")
    return ALGO_CLASSES[algo]


def algo_settings(config: dict[str, Any], algo: str) -> dict[str, Any]:
    algo_class(algo)
    return config["finetune"][algo]


def policy_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    """Turn YAML ``policy_kwargs`` into SB3 ones (activation names become classes)."""
    kwargs = dict(settings.get("policy_kwargs") or {})
    name = kwargs.get("activation_fn")
    if isinstance(name, str):
        if name not in _ACTIVATIONS:
            raise OptiqError(f"unknown activation_fn '{name}'; choose one of: {', '.join(_ACTIVATIONS)}")
        kwargs["activation_fn"] = _ACTIVATIONS[name]
    return kwargs


def make_training_venv(
    config: dict[str, Any],
    algo: str,
    seed: int,
    norm_stats_path: str | Path | None = None,
) -> VecEnv:
    """The vec-env RL trains on: n_envs Monitor-wrapped envs, VecNormalize if configured.

    Observation statistics given by ``norm_stats_path`` (a BC start's, a checkpoint's) are
    applied even where ``normalize`` is off: the policy was trained on normalised inputs
    (BC always normalises observations, see optiq/bc/train.py). Rewards are normalised only
    with ``normalize`` on.
    """
    settings = algo_settings(config, algo)
    venv = make_task_vec(config, settings["n_envs"], seed)
    if settings["normalize"] or norm_stats_path is not None:
        gamma = float(settings["hyperparams"].get("gamma", 0.99))
        venv = wrap_normalize(
            venv, training=True, gamma=gamma, stats_path=norm_stats_path, norm_reward=bool(settings["normalize"])
        )
    return venv


def make_eval_venv(
    config: dict[str, Any],
    algo: str,
    seed: int,
    norm_stats_path: str | Path | None = None,
    n_envs: int = 1,
    normalize: bool | None = None,
) -> VecEnv:
    """A vec-env for evaluation: frozen observation statistics and raw rewards.

    Without ``norm_stats_path`` the statistics start empty; during training they are
    copied from the training env before each evaluation. ``normalize`` (default: the
    algorithm's setting, or on when statistics are given) says whether to normalise at all.
    """
    settings = algo_settings(config, algo)
    venv = make_task_vec(config, n_envs, seed)
    if normalize is None:
        normalize = bool(settings["normalize"]) or norm_stats_path is not None
    if normalize:
        venv = wrap_normalize(venv, training=False, stats_path=norm_stats_path, norm_reward=False)
    return venv


def build_model(
    config: dict[str, Any],
    algo: str,
    venv: VecEnv,
    seed: int,
    tensorboard_log: str | Path | None = None,
    device: str = "auto",
    model_class: type[BaseAlgorithm] | None = None,
    extra_policy_kwargs: dict[str, Any] | None = None,
    **extra: Any,
) -> BaseAlgorithm:
    """A fresh SB3 model with the env's tuned hyperparameters.

    ``model_class`` swaps in an extension of the algorithm (HybridPPO, DemoSAC) and
    ``extra`` its own arguments or overrides of the tuned ones. Pixel observations get
    SB3's CnnPolicy (NatureCNN features, images scaled by 1/255), state ones MlpPolicy.
    """
    settings = algo_settings(config, algo)
    cls = model_class or algo_class(algo)
    hyperparams = {**settings["hyperparams"], **extra}
    return cls(
        "CnnPolicy" if pixel_mode(config) else "MlpPolicy",
        venv,
        seed=seed,
        verbose=0,
        device=device,
        tensorboard_log=str(tensorboard_log) if tensorboard_log else None,
        policy_kwargs={**policy_kwargs(settings), **(extra_policy_kwargs or {})},
        **hyperparams,
    )
