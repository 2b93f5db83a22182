"""Let imitation's BC train a SAC actor.

imitation's BC calls ``policy.evaluate_actions(obs, acts)``, which SAC's policy lacks.
This thin module exposes a likelihood of the actor under that name, so BC trains the very
actor SAC will fine-tune.

The likelihood is a Gaussian in action space centred on the actor's deterministic action
``tanh(mean)`` with the actor's std, not SAC's own squashed-Gaussian density: demonstrators
like a PPO expert clip their actions, so a third of Hopper's demo actions sit exactly at
+-1, where the squashed density needs ``atanh(+-1)`` (infinite; clamped, it still pulled the
pre-tanh means to +-3.8 and left BC far from the demos: action MSE 0.028 vs 0.0002 for PPO).
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

    def evaluate_actions(self, obs: th.Tensor, actions: th.Tensor) -> tuple[None, th.Tensor, th.Tensor]:
        # SAC acts in [-1, 1] (tanh): demo actions are scaled to it.
        low = th.as_tensor(self.action_space.low, device=actions.device, dtype=actions.dtype)
        high = th.as_tensor(self.action_space.high, device=actions.device, dtype=actions.dtype)
        scaled = (2.0 * (actions - low) / (high - low) - 1.0).clamp(-1.0, 1.0)
        mean_actions, log_std, _ = self.actor.get_action_dist_params(obs)
        distribution = th.distributions.Normal(th.tanh(mean_actions), log_std.exp())
        return None, distribution.log_prob(scaled).sum(dim=-1), distribution.entropy().sum(dim=-1)

    def mean_action(self, obs: th.Tensor) -> th.Tensor:
        """Deterministic action in env units (for the action-MSE metric)."""
        scaled = self.actor(obs, deterministic=True)
        low = th.as_tensor(self.action_space.low, device=scaled.device, dtype=scaled.dtype)
        high = th.as_tensor(self.action_space.high, device=scaled.device, dtype=scaled.dtype)
        return low + 0.5 * (scaled + 1.0) * (high - low)
