"""A frozen copy of a model's policy: the BC behaviour policy, the weights' average, the released policy.

SB3's on-policy algorithms pass ``use_sde`` to the policy outside ``policy_kwargs`` (the
off-policy ones put it inside), so a copy built from ``policy_kwargs`` alone has the wrong
``log_std`` shape under gSDE and cannot load the policy's weights.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy


def frozen_policy_copy(model: BaseAlgorithm, source: BasePolicy | None = None) -> BasePolicy:
    """A new policy of ``model``'s class and settings holding ``source``'s weights (default: the model's
    policy), in eval mode, with no optimiser and no gradients. Building it draws from torch's RNG;
    callers that must leave training's random stream untouched wrap it in ``torch.random.fork_rng``.
    """
    algo: Any = model
    kwargs = dict(algo.policy_kwargs)
    if isinstance(model, OnPolicyAlgorithm):
        kwargs.setdefault("use_sde", model.use_sde)
    policy = algo.policy_class(algo.observation_space, algo.action_space, algo.lr_schedule, **kwargs).to(algo.device)
    policy.load_state_dict((source if source is not None else algo.policy).state_dict())
    policy.optimizer = None
    policy.requires_grad_(False)
    policy.set_training_mode(False)
    return policy
