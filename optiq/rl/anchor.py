"""The return-driven BC anchor, shared by HybridPPO and DemoSAC.

A BC anchor whose weight decays on a clock lets go at a fixed time whatever the return does:
measured on Hopper-v5, BC -> PPO slid from 3,123 to 1,471 as its weight decayed, and DemoSAC
fell to 0.19 x its BC start. Here the weight is a Lagrange multiplier for "stay at least as
good as BC" (the adaptive BC weight of Zhao et al. 2022): the first ``bc_reference_episodes``
episodes of the critic warm-up, acted by the still-frozen BC policy, set a reference return;
after the warm-up every finished training episode moves the anchor's log-scale by
``bc_adapt_rate`` x its relative shortfall against that reference (clipped to +-1 per
episode), within [1 / BC_SCALE_LIMIT, BC_SCALE_LIMIT]. The anchor tightens as soon as RL
loses BC's return and lets go while RL stays above it. With ``bc_reference_fraction`` < 1 the
return it holds is that share of the reference: episodes at BC's own level then loosen it, so
it lets go once RL holds BC's return instead of only once RL beats it. By default training episodes are the
only signal: no extra env steps, no evaluation episodes (probes apart, below, spend env steps).

Mean-action probes (``bc_probe_every`` > 0, off-policy algorithms only): the reference is set
with BC's own small action noise, but later training episodes carry the policy's exploration
noise, which SAC's entropy tuning raises after the warm-up. Measured on Walker2d-v5 (DemoSAC, 100k): sampled
episodes scored 600-900 against a 1,075-1,118 reference while the evaluated policy sat at BC's
level, so the scale stayed at its cap for the whole run. With probes, every
``bc_probe_every``-th training episode after the warm-up acts by the policy's mean action, and
only those episodes move the scale, and the reference episodes act by BC's mean action too: the
comparison is like with like, at no extra env steps.

Probe episodes apart (``bc_probe_steps`` > 0, HybridPPO): an on-policy algorithm cannot put
mean-action episodes in its rollout buffer, and its sampled episodes can rise while the policy users
get (its mean action) falls: measured on Hopper-v5 with a log-std floor of -2.5, the expert BCs'
sampled episodes scored 1/3-1/2 of their noise-free return, the anchor let go at once, and the
evaluations fell to 0.34-0.45 x BC. :class:`AnchorProbes` (a callback with a probe env of its own)
then sets the reference from ``bc_reference_episodes`` noise-free BC episodes, and every
``bc_probe_steps`` env steps after the warm-up ``bc_probe_episodes`` noise-free episodes of the
evaluated policy move the scale; sampled training episodes do not. The probes are env
interactions: their steps count in the budget, as the guarded release's do, and so in every
schedule that reads ``num_timesteps``: the reference episodes (1-5k steps on Hopper) come out of
the critic warm-up, and the policy average's horizon counts probe steps too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from optiq.rl.release import candidate_policy, probe_returns

# The scale stays within [1 / BC_SCALE_LIMIT, BC_SCALE_LIMIT] times the anchor's base coefficient.
BC_SCALE_LIMIT = 100.0


def anchor_target(reference: float, fraction: float) -> float:
    """The return the anchor holds: below BC's ``reference`` by (1 - fraction) x |reference| (so
    ``fraction`` x the reference when it is positive, (2 - fraction) x when negative)."""
    return float(reference - (1.0 - fraction) * abs(reference))


def next_log_scale(
    log_scale: float, reference: float, episode_return: float, rate: float, fraction: float = 1.0
) -> float:
    """The anchor's log-scale after one training episode of ``episode_return`` against ``fraction``
    of ``reference``; the shortfall is relative to the reference, so the step size is the same for
    every fraction and for either sign of the reference."""
    target = anchor_target(reference, fraction)
    shortfall = float(np.clip((target - episode_return) / max(abs(reference), 1e-8), -1.0, 1.0))
    limit = float(np.log(BC_SCALE_LIMIT))
    return float(np.clip(log_scale + rate * shortfall, -limit, limit))


class ReturnDrivenAnchor:
    """Mixin for an SB3 algorithm (listed before it): the return-driven scale of its BC anchor.

    The algorithm provides ``bc_reference_episodes`` (0 = off), ``bc_adapt_rate`` and
    ``actor_is_learning()`` (False during its critic warm-up, while the BC policy acts).
    ``bc_reference_returns`` and ``bc_log_scale`` are plain attributes, so SB3 saves them with
    the model and a resumed run continues with the same reference and scale.
    """

    bc_reference_episodes: int
    bc_adapt_rate: float
    bc_reference_fraction: float = 1.0  # the anchor holds this share of BC's reference return
    bc_probe_every: int = 0  # 0: every sampled training episode moves the scale
    bc_probe_steps: int = 0  # > 0: probe episodes apart (AnchorProbes) move the scale, not training episodes
    bc_probe_episodes: int = 1
    bc_reference_returns: list[float]
    bc_log_scale: float

    def _init_anchor(self) -> None:
        self.bc_reference_returns = []  # returns of the BC policy's first warm-up episodes
        self.bc_log_scale = 0.0
        self.bc_episodes_after_warmup = 0  # training episodes finished after the warm-up (probes' clock)
        self.bc_probe_envs: np.ndarray | None = None  # per env: its episode in progress is a probe
        self.bc_next_probe = 0  # with bc_probe_steps: the env step of the next probe (saved, resumes)
        self.bc_anchor_probe_steps = 0  # with bc_probe_steps: env steps spent on reference and probes

    def actor_is_learning(self) -> bool:
        raise NotImplementedError

    @property
    def probes_drive_anchor(self) -> bool:
        """True when noise-free probe episodes apart (:class:`AnchorProbes`), not training episodes, move the scale."""
        return self.bc_probe_steps > 0 and self.bc_reference_episodes > 0

    def measuring_bc_reference(self) -> bool:
        """True while the BC episodes that set the reference return are running."""
        return len(self.bc_reference_returns) < self.bc_reference_episodes and not self.actor_is_learning()

    def bc_reference_return(self) -> float | None:
        return float(np.mean(self.bc_reference_returns)) if self.bc_reference_returns else None

    def bc_scale(self) -> float:
        """The factor on the anchor's base coefficient (1 while off or before the warm-up ends)."""
        return float(np.exp(self.bc_log_scale))

    def adapt_bc_scale(self, episode_return: float) -> None:
        """One finished training episode: a reference episode during the warm-up, else a step of the scale."""
        if self.measuring_bc_reference():
            self.bc_reference_returns.append(float(episode_return))
            return
        reference = self.bc_reference_return()
        if reference is None or not self.actor_is_learning():
            return
        self.bc_log_scale = next_log_scale(
            self.bc_log_scale, reference, episode_return, self.bc_adapt_rate, self.bc_reference_fraction
        )

    def acts_by_mean(self, n_envs: int) -> np.ndarray:
        """Per env: whether its episode in progress acts by the policy's mean action (reference or probe)."""
        if self.bc_probe_every <= 0 or self.bc_reference_episodes <= 0:
            return np.zeros(n_envs, dtype=bool)
        if self.measuring_bc_reference():
            return np.ones(n_envs, dtype=bool)
        return self._probe_envs(n_envs).copy()

    def _probe_envs(self, n_envs: int) -> np.ndarray:
        if self.bc_probe_envs is None or len(self.bc_probe_envs) != n_envs:
            self.bc_probe_envs = np.zeros(n_envs, dtype=bool)
        return self.bc_probe_envs

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        super()._update_info_buffer(infos, dones)  # type: ignore[misc]
        if self.bc_reference_episodes <= 0 or self.probes_drive_anchor:
            return  # off, or probe episodes apart (AnchorProbes) drive the scale
        for env_index, info in enumerate(infos):
            episode = info.get("episode")  # Monitor's summary of a finished episode
            if episode is None:
                continue
            if self.bc_probe_every <= 0:
                self.adapt_bc_scale(float(episode["r"]))
                continue
            probes = self._probe_envs(len(infos))
            if self.measuring_bc_reference() or probes[env_index]:
                self.adapt_bc_scale(float(episode["r"]))
            # Decide whether this env's next episode is a probe; warm-up episodes never are.
            if self.actor_is_learning():
                self.bc_episodes_after_warmup += 1
                probes[env_index] = self.bc_episodes_after_warmup % self.bc_probe_every == 0
            else:
                probes[env_index] = False

    def record_anchor(self, logger: Any, prefix: str) -> None:
        """TensorBoard: the scale and the reference it follows."""
        if self.bc_reference_episodes <= 0:
            return
        logger.record(f"{prefix}/bc_scale", self.bc_scale())
        reference = self.bc_reference_return()
        if reference is not None:
            logger.record(f"{prefix}/bc_reference_return", reference)
            if self.bc_reference_fraction != 1.0:
                logger.record(f"{prefix}/bc_anchor_target", anchor_target(reference, self.bc_reference_fraction))


class AnchorProbes(BaseCallback):
    """Noise-free episodes on ``probe_venv`` drive a :class:`ReturnDrivenAnchor`'s scale (``bc_probe_steps`` > 0).

    At the end of the first rollout (before any update, so the policy is still BC's) it plays
    ``bc_reference_episodes`` noise-free episodes for the reference. After the critic warm-up, at
    the first rollout end at least ``bc_probe_steps`` env steps after the last probe, the
    evaluated policy (the weights' average where one is kept) plays ``bc_probe_episodes``, and
    each moves the log-scale as a training episode would. Rollout ends, so the scale a PPO update
    uses is fresh and no rollout is cut. The probe steps are added to ``num_timesteps``.
    """

    def __init__(self, probe_venv: VecEnv):
        super().__init__()
        self.probe_venv = probe_venv

    @property
    def anchor(self) -> ReturnDrivenAnchor:
        assert isinstance(self.model, ReturnDrivenAnchor)
        return self.model

    def _probe(self, policy: BasePolicy, n_episodes: int) -> np.ndarray:
        returns, steps = probe_returns(self.model, policy, self.probe_venv, n_episodes)
        self.model.num_timesteps += steps  # env interactions: they spend the budget
        self.anchor.bc_anchor_probe_steps += steps
        return returns

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        anchor = self.anchor
        if not anchor.probes_drive_anchor:
            return
        if not anchor.bc_reference_returns:  # a resumed run keeps the reference it measured
            returns = self._probe(self.model.policy, anchor.bc_reference_episodes)
            anchor.bc_reference_returns = [float(r) for r in returns]
        elif anchor.actor_is_learning() and self.model.num_timesteps >= anchor.bc_next_probe:
            returns = self._probe(candidate_policy(self.model), anchor.bc_probe_episodes)
            for episode_return in returns:
                anchor.adapt_bc_scale(float(episode_return))
            self.logger.record("anchor/probe_return", float(np.mean(returns)))
        else:
            return
        anchor.bc_next_probe = self.model.num_timesteps + anchor.bc_probe_steps
        self.logger.record("anchor/probe_steps", anchor.bc_anchor_probe_steps)
