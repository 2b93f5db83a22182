"""Fine-tuned policies as plain SB3 models: the files users hand to other tools.

HybridPPO and DemoSAC zips hold an optimiser with two parameter groups and pickled optiq
objects (settings, a demo replay buffer class), so stock ``PPO.load``/``SAC.load`` cannot read
them and other tools (rl-baselines3-zoo's ``enjoy``, ``evaluate_policy``) would need optiq.
The final and best policies of a run are therefore written as the stock algorithm: same
policy class, policy settings, hyperparameters and weights, fresh optimiser. The extension's
own zips stay in ``checkpoints/`` for resuming. VecNormalize files are written with plain
SB3 statistics objects for the same reason (optiq freezes them while training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from optiq.atomic_io import write_with
from optiq.envs import plain_statistics

# Attributes that are objects of a live run, not settings: never copied to the stock model.
_RUNTIME = {
    "policy",
    "env",
    "_vec_normalize_env",
    "replay_buffer",
    "rollout_buffer",
    "_logger",
    "_custom_logger",
    "ep_info_buffer",
    "ep_success_buffer",
    "device",
    "actor",
    "critic",
    "critic_target",
    "ent_coef_optimizer",
    "log_ent_coef",
    "batch_norm_stats",
    "batch_norm_stats_target",
    "replay_buffer_class",
    "replay_buffer_kwargs",
    "rollout_buffer_class",
    "rollout_buffer_kwargs",
    "lr_schedule",
    "clip_range",
    "clip_range_vf",
}


def stock_algorithm(model: BaseAlgorithm) -> type[BaseAlgorithm]:
    for cls in (PPO, SAC):
        if isinstance(model, cls):
            return cls
    raise TypeError(f"no stock algorithm for {type(model).__name__}")


def stock_model(model: BaseAlgorithm) -> BaseAlgorithm:
    """``model`` as a plain PPO/SAC with the same settings and policy weights (itself if already stock)."""
    cls = stock_algorithm(model)
    if type(model) is cls:
        return model
    stock = cls(policy=model.policy_class, env=model.get_env(), device=model.device, _init_setup_model=False)
    settings: dict[str, Any] = {
        key: value for key, value in vars(model).items() if key in vars(stock) and key not in _RUNTIME
    }
    for key in ("clip_range", "clip_range_vf"):  # PPO turns these into schedules; keep their start values
        if hasattr(model, key):
            value = getattr(model, key)
            settings[key] = value(1.0) if callable(value) else value
    if cls is SAC and model.log_ent_coef is not None:
        settings["ent_coef"] = f"auto_{float(model.log_ent_coef.detach().exp()):.8g}"
    policy_class = model.policy_class
    if policy_class.__module__.startswith("optiq."):  # e.g. LayerNormSACPolicy: SB3's own base class instead
        policy_class = next(c for c in policy_class.__mro__[1:] if c.__module__.startswith("stable_baselines3."))
    settings["policy_class"] = policy_class
    stock.__dict__.update(settings)
    stock._setup_model()
    _copy_policy_weights(model, stock)
    stock.num_timesteps = model.num_timesteps
    return stock


def _copy_policy_weights(model: BaseAlgorithm, stock: BaseAlgorithm) -> None:
    """All weights where the architectures agree; a LayerNorm critic (stock SAC has none) stays behind.

    Evaluation and ``predict`` use only the actor, which always transfers; a stock SAC continuing
    to train from the file starts with fresh critics (resume from checkpoints/ to keep them).
    """
    source, target = model.policy.state_dict(), stock.policy.state_dict()
    same = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    actor = [k for k in target if k.startswith(("actor.", "mlp_extractor.policy_net.", "action_net.", "log_std"))]
    missing = [k for k in actor if k not in same]
    if missing:
        raise ValueError(f"cannot export the policy: no stock counterpart for {', '.join(missing)}")
    if len(same) == len(target):
        stock.policy.load_state_dict(same)
    else:
        stock.policy.load_state_dict({**target, **same})
        stock.critic_target.load_state_dict(stock.critic.state_dict())


def save_stock_model(model: BaseAlgorithm, path: str | Path) -> Path:
    """Atomically write ``model`` as a zip that stock SB3 loads without optiq."""
    stock = stock_model(model)
    return write_with(Path(path), lambda p: stock.save(p))


def save_vecnormalize(venv: VecNormalize, path: str | Path) -> Path:
    """Atomically write ``venv``'s statistics as a stock SB3 VecNormalize pickle."""
    with plain_statistics(venv):
        return write_with(Path(path), lambda p: venv.save(str(p)))
