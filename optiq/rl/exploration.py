"""Exploration noise as wide as the BC policy tolerates: HybridPPO's ``log_std_floor_tolerance``.

BC leaves a tiny action std (Hopper-v5: log std -4.7 to -2.8), and PPO explores with it. A wider
floor (``log_std_floor``) lets PPO climb from a medium demonstrator but wrecks an expert's gait.
Measured on the six BCs of bench/sample_efficiency.py --quick (10 sampled episodes each, stage
04's evaluation env): at log std -2.5 the expert BCs scored 0.45 / 0.37 / 0.65 x their return at
their own std (2,253 / 3,104 / 1,640), the medium BCs 0.98 / 0.90 / 0.94 (955 / 1,072 / 934).
So the floor is a question the BC policy can answer itself: before the first rollout,
:class:`NoiseToleranceCheck` plays ``log_std_floor_check_episodes`` sampled episodes at BC's own
std and as many at the floor, on an env of its own, and keeps the floor only if its mean return
is at least ``log_std_floor_tolerance`` x the own-std one. The episodes are env interactions:
they count in the budget (``num_timesteps``), and the critic warm-up starts after them
(``HybridPPO.pre_warmup_steps``), so the critic still gets its full warm-up of rollouts.

The ratio assumes positive returns (Hopper's and Walker2d's): where BC's own-std mean is <= 0
it reads 0 and the floor is dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization


def sampled_returns(model: Any, venv: VecEnv, n_episodes: int) -> tuple[np.ndarray, int]:
    """Returns of ``n_episodes`` episodes acted with the policy's sampled actions, and their env steps."""
    train_env = model.get_env()
    if isinstance(train_env, VecNormalize) and isinstance(venv, VecNormalize):
        sync_envs_normalization(train_env, venv)
    returns, lengths = evaluate_policy(
        model, venv, n_eval_episodes=n_episodes, deterministic=False, return_episode_rewards=True, warn=False
    )
    return np.asarray(returns, dtype=float), int(np.sum(lengths))


class NoiseToleranceCheck(BaseCallback):
    """At the start of a fresh HybridPPO run: keep ``log_std_floor`` only where BC's return tolerates it.

    Listed after the evaluation callback, so the step-0 evaluation is BC's at step 0. A resumed
    run keeps its decision (``HybridPPO.log_std_floor_decision``, saved with the model) and the
    log std its checkpoint holds.
    """

    def __init__(self, probe_venv: VecEnv):
        super().__init__()
        self.probe_venv = probe_venv

    def _on_step(self) -> bool:
        return True

    def _on_training_start(self) -> None:
        model = self.model
        if model.log_std_floor_decision is not None:
            return
        settings = model.hybrid
        log_std = model.policy.log_std
        own = log_std.detach().clone()
        own_returns, own_steps = sampled_returns(model, self.probe_venv, settings.log_std_floor_check_episodes)
        with th.no_grad():
            log_std.clamp_(min=float(settings.log_std_floor))
        floor_returns, floor_steps = sampled_returns(model, self.probe_venv, settings.log_std_floor_check_episodes)
        own_mean, floor_mean = float(own_returns.mean()), float(floor_returns.mean())
        ratio = floor_mean / own_mean if own_mean > 0 else 0.0
        kept = ratio >= settings.log_std_floor_tolerance
        if not kept:
            with th.no_grad():
                log_std.copy_(own)
        steps = own_steps + floor_steps
        model.num_timesteps += steps  # env interactions: they spend the budget
        model.pre_warmup_steps += steps  # ...but not the critic's warm-up
        model.log_std_floor_decision = {
            "kept": bool(kept),
            "ratio": ratio,
            "own_std_return": own_mean,
            "floor_return": floor_mean,
            "steps": int(steps),
        }
        self.logger.record("hybrid/log_std_floor_kept", float(kept))
        self.logger.record("hybrid/log_std_floor_ratio", ratio)
