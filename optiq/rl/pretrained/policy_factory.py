"""Policy factory for pretrained-encoder starts: ``make_policy`` and ``bootstrap_model``.

``make_policy(algo, env, features_extractor=None, policy_kwargs=None)`` builds a PPO/SAC
model on a vec-env with optional extra policy kwargs (net_arch, activation_fn, ortho_init,
...). ``bootstrap_model`` turns a pretrained checkpoint and an adapter mode into such a
model plus the :class:`~optiq.rl.pretrained.encoder_start.BootstrapReport` of what was copied and adapted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from optiq.algos import algo_settings, build_model
from optiq.envs import make_env, make_vec, wrap_normalize
from optiq.errors import OptiqError
from optiq.rl.pretrained.encoder_start import (
    AdaptedEncoder,
    BootstrapReport,
    PretrainedFeaturesExtractor,
    build_adapters,
    copy_mlp_layers,
    load_pretrained,
    make_adapter_obs_wrapper,
)


def make_policy(
    algo: str,
    env: VecEnv,
    config: dict[str, Any],
    seed: int = 0,
    features_extractor: tuple[type, dict[str, Any]] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    **build_kwargs: Any,
) -> BaseAlgorithm:
    """A model with the env's tuned settings, an optional features extractor and policy kwargs."""
    extra = dict(policy_kwargs or {})
    if features_extractor is not None:
        extra["features_extractor_class"], extra["features_extractor_kwargs"] = features_extractor
    return build_model(config, algo, env, seed, extra_policy_kwargs=extra, **build_kwargs)


@dataclass
class Bootstrapped:
    model: BaseAlgorithm
    report: BootstrapReport
    adapter: nn.Module | None
    pre_adapter: nn.Module | None


def _torso(model: BaseAlgorithm) -> tuple[nn.Module, str]:
    policy = model.policy
    if hasattr(policy, "mlp_extractor"):
        return policy.mlp_extractor.policy_net, "mlp_extractor.policy_net"
    return policy.actor.latent_pi, "actor.latent_pi"


def _vec_env(config: dict[str, Any], algo: str, seed: int, n_envs: int, wrapper: Any = None) -> VecEnv:
    settings = algo_settings(config, algo)
    venv = make_vec(config["env_id"], n_envs, seed, wrapper_class=wrapper)
    if settings["normalize"]:
        venv = wrap_normalize(venv, training=True, gamma=float(settings["hyperparams"].get("gamma", 0.99)))
    return venv


def bootstrap_model(
    config: dict[str, Any],
    algo: str,
    seed: int,
    pretrained: Path | None,
    adapter_mode: str = "none",
    torchscript_in_dim: int | None = None,
    adapter_hidden: list[int] | None = None,
    feature_pool: str = "last",
    obs_key: str | None = None,
    n_envs: int | None = None,
    device: str = "auto",
    tensorboard_log: str | None = None,
) -> Bootstrapped:
    """Build the RL model for ``adapter_mode`` from ``pretrained`` and report what happened."""
    n_envs = n_envs or algo_settings(config, algo)["n_envs"]
    probe_env = make_env(config["env_id"])
    space = probe_env.observation_space
    probe_env.close()
    if obs_key is not None:
        space = space.spaces[obs_key] if hasattr(space, "spaces") and obs_key in space.spaces else space
    env_obs_dim = int(np.prod(space.shape))
    kwargs = {"device": device, "tensorboard_log": tensorboard_log}
    if pretrained is None or adapter_mode == "none":
        if adapter_mode != "none":
            raise OptiqError(f"--adapter-mode {adapter_mode} needs --pretrained PATH")
        model = make_policy(algo, _vec_env(config, algo, seed, n_envs), config, seed, **kwargs)
        copied: list[tuple[str, bool]] = []
        arch, f_src = "none", env_obs_dim
        pre = post = None
        if pretrained is not None:  # mode none with an MLP: copy what fits into the torso
            artifacts = load_pretrained(pretrained, device, "none", env_obs_dim)
            torso, prefix = _torso(model)
            copied = copy_mlp_layers(artifacts, torso, prefix)
            arch, f_src = artifacts.arch, artifacts.f_src
        report = BootstrapReport(
            arch, f_src, env_obs_dim, adapter_hidden or [], "none", copied, [n for n, c in copied if not c]
        )
        return Bootstrapped(model, report, None, None)

    artifacts = load_pretrained(pretrained, device, adapter_mode, env_obs_dim, torchscript_in_dim, feature_pool)
    if adapter_mode == "obs":
        pre, post = build_adapters(artifacts, env_obs_dim, env_obs_dim, adapter_hidden)
        adapted = AdaptedEncoder(artifacts.encoder, pre, post)
        out_dim = env_obs_dim if post is not None else artifacts.f_src
        venv = _vec_env(config, algo, seed, n_envs, make_adapter_obs_wrapper(adapted, out_dim, obs_key))
        model = make_policy(algo, venv, config, seed, **kwargs)
        f_tgt = out_dim
    else:  # feature
        f_tgt = env_obs_dim  # what the policy's first Linear reads with the default extractor
        extractor_kwargs = {
            "pretrained_path": str(pretrained),
            "features_dim": f_tgt,
            "torchscript_in_dim": torchscript_in_dim,
            "feature_pool": feature_pool,
            "adapter_hidden": adapter_hidden,
        }
        model = make_policy(
            algo,
            _vec_env(config, algo, seed, n_envs),
            config,
            seed,
            (PretrainedFeaturesExtractor, extractor_kwargs),
            **kwargs,
        )
        extractor = (
            model.policy.features_extractor
            if hasattr(model.policy, "features_extractor")
            else model.policy.actor.features_extractor
        )
        pre, post = extractor.adapted.pre_adapter, extractor.adapted.adapter
    torso, prefix = _torso(model)
    copied = copy_mlp_layers(artifacts, torso, prefix)
    adapter_layers = [("adapter", False)] if post is not None else []
    adapter_layers += [("pre_adapter", False)] if pre is not None else []
    random_layers = [n for n, c in copied if not c] + [n for n, _ in adapter_layers]
    report = BootstrapReport(
        artifacts.arch, artifacts.f_src, f_tgt, adapter_hidden or [], adapter_mode, copied, random_layers
    )
    return Bootstrapped(model, report, post, pre)
