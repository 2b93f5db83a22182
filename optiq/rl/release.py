"""A guarded release: the policy users get changes only after it has matched BC on its own probe episodes.

BC -> PPO on Hopper-v5 from expert demos still dips below its BC start at single evaluations
(seed 2, averaged policy: lowest 0.69 x BC at 200k; DemoSAC's expert seed 1: 0.49 x BC at 90k)
while its sampled training return stays level: the anchor only sees sampled training episodes,
and a deterministic policy can fail where the sampled one does not. So the policy that is
evaluated, saved and handed on is a *released* copy (safe policy improvement by validation,
as deployments gate a model on a held-out check): every ``release_check_steps`` env steps the
candidate (the weights' average where one is kept, else the raw policy) plays
``release_check_episodes`` noise-free episodes on a probe env of its own; it is released only
if its mean return is at least ``release_min_fraction`` times BC's on the same probe
(``release_reference_episodes`` noise-free BC episodes at the start). Otherwise the last
released policy stays. Training is unchanged: the raw policy acts and learns.

The probe episodes are env interactions, so they count: their steps are added to the model's
``num_timesteps`` and the run ends at the same total budget with fewer training steps. The probe
env is seeded apart from the evaluation env, so evaluation returns stay an out-of-sample
measurement. The threshold is BC's return, not the best so far: the guard promises "no worse
than BC", without picking the luckiest probe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from optiq.rl.policy_copy import frozen_policy_copy
from optiq.rl.training import evaluate_returns


class GuardedRelease:
    """Mixin for an SB3 algorithm (listed before it): the ``released_policy`` beside ``policy``.

    The subclass calls :meth:`_init_release` before SB3's constructor and
    :meth:`_setup_release` in ``_setup_model``; :class:`ReleaseGate` (a callback with its own
    probe env) decides what is released. ``release_check_steps`` 0 is off. The reference and
    the schedule are plain attributes and the released policy a state dict, so SB3 saves them
    with the model and a resumed run continues its guard.
    """

    policy: BasePolicy
    num_timesteps: int

    def _init_release(
        self, check_steps: int, check_episodes: int, reference_episodes: int, min_fraction: float
    ) -> None:
        for name, value in (
            ("release_check_steps", check_steps),
            ("release_check_episodes", check_episodes),
            ("release_reference_episodes", reference_episodes),
        ):
            if value < 0 or (name != "release_check_steps" and value < 1):
                raise ValueError(f"{name} must be {'>= 0' if name == 'release_check_steps' else '>= 1'}, got {value}")
        if min_fraction < 0:
            raise ValueError(f"release_min_fraction must be >= 0, got {min_fraction}")
        self.release_check_steps = int(check_steps)
        self.release_check_episodes = int(check_episodes)
        self.release_reference_episodes = int(reference_episodes)
        self.release_min_fraction = float(min_fraction)
        self.released_policy: BasePolicy | None = None
        self.release_reference: float | None = None  # BC's mean probe return; None: not measured yet
        self.release_next_check = 0
        self.release_probe_steps = 0  # env steps spent on probes (counted in num_timesteps)
        self.release_count = 0  # how many checks released their candidate

    @property
    def guards_release(self) -> bool:
        return self.release_check_steps > 0

    def _setup_release(self) -> None:
        if not self.guards_release:
            return
        model: Any = self
        # Built without drawing from torch's RNG, so training's random stream is as without the guard.
        with th.random.fork_rng(devices=[]):
            self.released_policy = frozen_policy_copy(model)

    def _release_save_params(self, state_dicts: list[str]) -> list[str]:
        return [*state_dicts, "released_policy"] if self.released_policy is not None else state_dicts

    def release_started(self) -> bool:
        return self.released_policy is not None and self.release_reference is not None

    @th.no_grad()
    def release(self, candidate: BasePolicy) -> None:
        assert self.released_policy is not None
        self.released_policy.load_state_dict(candidate.state_dict())
        self.release_count += 1


def candidate_policy(model: BaseAlgorithm) -> BasePolicy:
    """The policy a release check probes: the weights' average where it has started, else the raw policy."""
    averaged = getattr(model, "averaged_policy", None)
    if averaged is not None and getattr(model, "policy_averaged_at", None) is not None:
        return averaged
    return model.policy


def probe_returns(
    model: BaseAlgorithm, policy: BasePolicy, probe_venv: VecEnv, n_episodes: int
) -> tuple[np.ndarray, int]:
    """Noise-free returns of ``policy`` over ``n_episodes`` probe episodes, and the env steps they took."""
    train_env = model.get_env()
    if isinstance(train_env, VecNormalize) and isinstance(probe_venv, VecNormalize):
        sync_envs_normalization(train_env, probe_venv)
    raw = model.policy
    model.policy = policy
    try:
        returns, lengths = evaluate_returns(model, probe_venv, n_episodes)
    finally:
        model.policy = raw
    return returns, int(lengths.sum())


class ReleaseGate(BaseCallback):
    """Runs the release checks of a :class:`GuardedRelease` model on ``probe_venv``.

    Listed before the evaluation callback, so an evaluation at the same step sees the policy
    this check released (or kept).
    """

    def __init__(self, probe_venv: VecEnv, on_check: Callable[[dict[str, float]], None] | None = None):
        super().__init__()
        self.probe_venv = probe_venv
        self.on_check = on_check
        self._pending_steps = 0  # probe steps not yet added to num_timesteps

    @property
    def guarded(self) -> GuardedRelease:
        assert isinstance(self.model, GuardedRelease)
        return self.model

    def _probe(self, policy: BasePolicy, n_episodes: int) -> float:
        returns, steps = probe_returns(self.model, policy, self.probe_venv, n_episodes)
        self._pending_steps += steps
        self.guarded.release_probe_steps += steps
        return float(returns.mean())

    def _spend_probe_steps(self) -> None:
        # Probes are env interactions: they spend the budget. Added at a step, not at the start,
        # so the start is still evaluated as step 0.
        self.model.num_timesteps += self._pending_steps
        self._pending_steps = 0

    def _on_training_start(self) -> None:
        guarded = self.guarded
        if not guarded.guards_release or guarded.release_reference is not None:
            return  # off, or a resumed run that measured its reference already
        start = candidate_policy(self.model)  # BC's weights, before any update
        guarded.release_reference = self._probe(start, guarded.release_reference_episodes)
        guarded.release(start)
        guarded.release_next_check = self.model.num_timesteps + self._pending_steps + guarded.release_check_steps
        self._record(guarded.release_reference, released=True)

    def _on_step(self) -> bool:
        guarded = self.guarded
        self._spend_probe_steps()
        if not guarded.release_started() or self.model.num_timesteps < guarded.release_next_check:
            return True
        candidate = candidate_policy(self.model)
        probe = self._probe(candidate, guarded.release_check_episodes)
        assert guarded.release_reference is not None
        passed = probe >= guarded.release_min_fraction * guarded.release_reference
        if passed:
            guarded.release(candidate)
        self._spend_probe_steps()
        guarded.release_next_check = self.model.num_timesteps + guarded.release_check_steps
        self._record(probe, released=passed)
        return True

    def _record(self, probe: float, released: bool) -> None:
        guarded = self.guarded
        row = {
            "timesteps": float(self.model.num_timesteps),
            "probe_return": probe,
            "reference": float(guarded.release_reference or 0.0),
            "released": float(released),
            "probe_steps": float(guarded.release_probe_steps),
        }
        if self.logger is not None:
            self.logger.record("release/probe_return", probe)
            self.logger.record("release/released", float(released))
            self.logger.record("release/reference", row["reference"])
            self.logger.record("release/probe_steps", row["probe_steps"])
        if self.on_check is not None:
            self.on_check(row)
