"""An exponential moving average of the policy's weights: the policy that is evaluated and saved.

BC -> PPO on Hopper-v5 from expert demos keeps a steady *sampled* training return while its
deterministic policy swings from one evaluation to the next (seed 1: 3,490 -> 1,557 -> 3,070
at 60k / 70k / 80k; seed 2: 2,647 -> 832 -> 2,573 at 160k-180k). The swings are the last few
gradient steps, not a trend, so the policy users get is the average of the weights over the
last ``policy_average_steps`` env steps (Polyak averaging; weight averaging for deep RL,
Nikishin et al. 2018). Training is unchanged: the raw policy acts in the training env and
takes the gradient steps. Evaluations, the best and final models, exported state dicts and
videos use the average (:func:`evaluated_policy`).

The average starts at the weights learn() starts from, and each ``train()`` call keeps
``exp(-n / H)`` of it and takes the rest from the current weights, with ``n`` the env steps
since the last update and ``H = policy_average_steps``, so the
horizon means the same for PPO (one update per rollout) and SAC (one per env step). The
average is a policy module saved with the model (a state dict in the zip), so a resumed run
continues it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from optiq.rl.policy_copy import frozen_policy_copy


def average_decay(steps: int, horizon: int) -> float:
    """The share of the old average an update keeps after ``steps`` env steps: ``exp(-steps / horizon)``."""
    return math.exp(-steps / horizon)


@th.no_grad()
def blend_into(averaged: dict[str, th.Tensor], current: dict[str, th.Tensor], decay: float) -> None:
    """``averaged = decay * averaged + (1 - decay) * current`` in place (integers copied).

    One multi-tensor multiply and add over all floating tensors: the same arithmetic, bit for bit,
    as a per-tensor ``mul_``/``add_``, with less Python per call (DemoSAC blends after every env step).
    """
    blended, sources = [], []
    for name, tensor in current.items():
        if tensor.is_floating_point():
            blended.append(averaged[name])
            sources.append(tensor)
        else:
            averaged[name].copy_(tensor)
    if blended:
        th._foreach_mul_(blended, decay)
        th._foreach_add_(blended, sources, alpha=1.0 - decay)


class PolicyAveraging:
    """Mixin for an SB3 algorithm (listed before it): keeps ``averaged_policy`` beside ``policy``.

    The subclass calls :meth:`_init_policy_average` before SB3's constructor, builds the
    module with :meth:`_setup_policy_average` in ``_setup_model`` and calls
    :meth:`update_policy_average` at the end of ``train()``. ``policy_average_steps`` 0 is off.
    """

    policy: BasePolicy
    num_timesteps: int

    def _init_policy_average(self, policy_average_steps: int) -> None:
        if policy_average_steps < 0:
            raise ValueError(f"policy_average_steps must be >= 0, got {policy_average_steps}")
        self.policy_average_steps = int(policy_average_steps)
        self.averaged_policy: BasePolicy | None = None
        self.policy_averaged_at: int | None = None  # env steps at the last update; None: not started

    def _setup_policy_average(self) -> None:
        if self.policy_average_steps <= 0:
            return
        model: Any = self
        # Built without drawing from torch's RNG, so the run's own random stream (and so its
        # training) is exactly what it is without an average; its weights are copied anyway.
        with th.random.fork_rng(devices=[]):
            self.averaged_policy = frozen_policy_copy(model)

    def _policy_average_save_params(self, state_dicts: list[str]) -> list[str]:
        return [*state_dicts, "averaged_policy"] if self.averaged_policy is not None else state_dicts

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._setup_learn(*args, **kwargs)  # type: ignore[misc]
        # The average starts as the policy learn() starts from (BC's weights, copied in by then);
        # a resumed run keeps the average it saved.
        if self.policy_averaged_at is None:
            self.update_policy_average()
        return result

    @th.no_grad()
    def update_policy_average(self) -> None:
        """Move the average towards the current weights (the first call copies them)."""
        if self.averaged_policy is None:
            return
        current = self.policy.state_dict()
        if self.policy_averaged_at is None:
            self.averaged_policy.load_state_dict(current)
        else:
            decay = average_decay(self.num_timesteps - self.policy_averaged_at, self.policy_average_steps)
            blend_into(self.averaged_policy.state_dict(), current, decay)
        self.policy_averaged_at = int(self.num_timesteps)


@contextmanager
def evaluated_policy(model: BaseAlgorithm) -> Iterator[BaseAlgorithm]:
    """``model`` with the policy users get in place of the raw one: the released policy where a
    release guard has started (optiq/rl/release.py), else the averaged policy where one has started
    (before learn() starts, the raw policy is the average), else the raw policy itself."""
    shown = None
    released = getattr(model, "released_policy", None)
    if released is not None and getattr(model, "release_reference", None) is not None:
        shown = released
    elif getattr(model, "averaged_policy", None) is not None and getattr(model, "policy_averaged_at", None) is not None:
        shown = model.averaged_policy  # type: ignore[attr-defined]
    if shown is None:
        yield model
        return
    raw = model.policy
    model.policy = shown
    try:
        yield model
    finally:
        model.policy = raw
