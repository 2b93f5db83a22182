"""Let imitation's BC train a SAC actor.

imitation's BC calls ``policy.evaluate_actions(obs, acts)``, which SAC's policy lacks.
This thin module exposes the actor's squashed-Gaussian log-likelihood under that name,
so BC trains the very actor SAC will fine-tune.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.sac.policies import SACPolicy
from torch import nn


class SACActorForBC(nn.Module):
    """Wrap ``SACPolicy.actor`` with the ``evaluate_actions`` API that imitation's BC uses."""

    def __init__(self, policy: SACPolicy):
        super().__init__()
        self.sac_policy = policy
        self.actor = policy.actor
        self.observation_space = policy.observation_space
        self.action_space = policy.action_space

    @property
    def device(self) -> th.device:
        return self.sac_policy.device

    def evaluate_actions(self, obs: th.Tensor, actions: th.Tensor) -> tuple[None, th.Tensor, None]:
        # SAC acts in [-1, 1] (tanh), so demo actions are scaled and kept off the asymptotes.
        low = th.as_tensor(self.action_space.low, device=actions.device, dtype=actions.dtype)
        high = th.as_tensor(self.action_space.high, device=actions.device, dtype=actions.dtype)
        scaled = (2.0 * (actions - low) / (high - low) - 1.0).clamp(-0.999, 0.999)
        mean_actions, log_std, kwargs = self.actor.get_action_dist_params(obs)
        distribution = self.actor.action_dist.proba_distribution(mean_actions, log_std, **kwargs)
        return None, distribution.log_prob(scaled), None

    def mean_action(self, obs: th.Tensor) -> th.Tensor:
        """Deterministic action in env units (for the action-MSE metric)."""
        scaled = self.actor(obs, deterministic=True)
        low = th.as_tensor(self.action_space.low, device=scaled.device, dtype=scaled.dtype)
        high = th.as_tensor(self.action_space.high, device=scaled.device, dtype=scaled.dtype)
        return low + 0.5 * (scaled + 1.0) * (high - low)
