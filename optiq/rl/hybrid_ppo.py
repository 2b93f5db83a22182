"""PPO that keeps what BC learned: critic warm-up, actor LR warm-up, BC regularisation and
V-trace-corrected demonstration samples.

Naive BC -> PPO collapses early because the critic starts untrained and its advantages are
noise (SB3 #543). :class:`HybridPPO` extends SB3's PPO without copying its update loop:
PPO's own ``train()`` runs unchanged, and the policy optimiser is wrapped
(:class:`~optiq.rl.optim.HookedOptimizer`) so the extensions act at ``step()``, right after
PPO's backward pass and gradient clipping:

* critic warm-up: for the first ``critic_warmup_steps`` env steps the actor's gradients are
  dropped, so only the value function learns, on rollouts of the BC policy (PIRLNav recipe);
* actor learning-rate warm-up: the actor's LR then ramps linearly over ``actor_lr_warmup_steps``
  up to ``actor_lr_scale`` times PPO's (a near-expert BC actor needs small steps);
* BC term: ``bc_coeff * bc_decay**k`` times the demos' negative log-likelihood (DAPG-style
  decay, ``k`` = PPO iterations with actor updates);
* demo samples: a ``mix_ratio`` share of each minibatch comes from demonstrations, with
  V-trace value targets and advantages (ratios pi/mu capped at ``rho_bar`` / ``c_bar``; the
  behaviour density mu is the frozen BC policy, the best model of the demonstrator we have).

With every extension off it performs exactly stock PPO's update (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from imitation.data import rollout, types
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy

from optiq.rl.optim import HookedOptimizer
from optiq.rl.vtrace import vtrace

ACTOR_PREFIXES = ("mlp_extractor.policy_net.", "action_net.", "log_std", "pi_features_extractor.")


@dataclass
class HybridSettings:
    """The extensions' knobs (hparams ``finetune.ppo.bc_rl`` / flags of 04_finetune_rl)."""

    critic_warmup_steps: int = 0
    actor_lr_warmup_steps: int = 0
    actor_lr_scale: float = 1.0  # the actor's LR relative to PPO's, after the warm-up
    bc_coeff: float = 0.0
    bc_decay: float = 1.0
    bc_batch_size: int = 256
    mix_ratio: float = 0.0
    rho_bar: float = 1.0
    c_bar: float = 1.0
    log_std_subtract: float = 0.0

    @property
    def uses_demos(self) -> bool:
        return self.bc_coeff > 0 or self.mix_ratio > 0


def actor_parameter_names(policy: ActorCriticPolicy) -> set[str]:
    """The actor's parameters; an unshared features extractor (a CNN) is the actor's too.

    PyTorch names the unshared actor extractor ``features_extractor.`` (its first name), so
    without this a pixel policy's actor CNN would keep learning during the critic warm-up.
    """
    prefixes = ACTOR_PREFIXES if policy.share_features_extractor else (*ACTOR_PREFIXES, "features_extractor.")
    return {name for name, _ in policy.named_parameters() if name.startswith(prefixes)}


class HybridPPO(PPO):
    """SB3 PPO plus the BC-preserving extensions described in the module docstring."""

    def __init__(self, *args: Any, hybrid: HybridSettings | None = None, **kwargs: Any):
        self.hybrid = hybrid or HybridSettings()
        self._demo: dict[str, np.ndarray] | None = None
        self._targets: dict[str, np.ndarray] | None = None
        self._demo_obs: np.ndarray | None = None  # demo observations normalised for the current iteration
        self._behaviour_policy: ActorCriticPolicy | None = None
        self._actor_iterations = 0
        self._last_train_timesteps = -1
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        # Two param groups (actor, critic) so the actor's LR can warm up on its own;
        # Adam's per-parameter update is the same as with one group.
        names = actor_parameter_names(self.policy)
        actor = [p for n, p in self.policy.named_parameters() if n in names]
        critic = [p for n, p in self.policy.named_parameters() if n not in names]
        base = self.policy.optimizer
        inner = type(base)(
            [{"params": actor, "name": "actor"}, {"params": critic, "name": "critic"}], **self.policy.optimizer_kwargs
        )
        inner.param_groups[0]["lr"] = inner.param_groups[1]["lr"] = base.param_groups[0]["lr"]
        self.policy.optimizer = HookedOptimizer(inner, self._before_optimizer_step)  # type: ignore[assignment]

    def _excluded_save_params(self) -> list[str]:
        # Demos and the behaviour policy are inputs, re-attached by set_demonstrations on resume.
        return [*super()._excluded_save_params(), "_demo", "_demo_obs", "_demo_rng", "_behaviour_policy", "_targets"]

    # ----- demonstrations -------------------------------------------------------------
    def set_demonstrations(
        self, trajectories: list[types.TrajectoryWithRew], behaviour_policy: ActorCriticPolicy | None = None
    ) -> None:
        """Raw-observation demo episodes for the BC term and the V-trace demo samples.

        ``behaviour_policy`` (the BC policy) models the demonstrator's action density mu; by
        default the current policy is frozen for it (right after copying BC weights).
        """
        flat = rollout.flatten_trajectories_with_rew(trajectories)
        obs, acts = flat.obs.astype(np.float32), flat.acts.astype(np.float32)
        self._demo = {
            "obs": obs,
            "next_obs": flat.next_obs.astype(np.float32),
            "acts": acts,
            "rews": flat.rews.astype(np.float32),
            "ends": np.cumsum([len(t.acts) for t in trajectories]),
            "terminal": np.array([bool(t.terminal) for t in trajectories]),
        }
        self._demo_rng = np.random.default_rng(self.seed)
        source = behaviour_policy if behaviour_policy is not None else self.policy
        self._behaviour_policy = self.policy_class(
            self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
        ).to(self.device)
        self._behaviour_policy.load_state_dict(source.state_dict())
        self._behaviour_policy.set_training_mode(False)
        for p in self._behaviour_policy.parameters():
            p.requires_grad_(False)
        with th.no_grad():
            self._demo["mu_log_prob"] = self._log_prob(self._behaviour_policy, self._normalize_obs(obs), acts)

    def bc_coefficient(self) -> float:
        return self.hybrid.bc_coeff * self.hybrid.bc_decay**self._actor_iterations

    def in_critic_warmup(self) -> bool:
        return self.num_timesteps <= self.hybrid.critic_warmup_steps

    def actor_lr_factor(self) -> float:
        if self.in_critic_warmup():
            return 0.0
        if self.hybrid.actor_lr_warmup_steps <= 0:
            return self.hybrid.actor_lr_scale
        progress = (self.num_timesteps - self.hybrid.critic_warmup_steps) / self.hybrid.actor_lr_warmup_steps
        return float(np.clip(progress, 0.0, 1.0)) * self.hybrid.actor_lr_scale

    def _normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        vec_normalize = self.get_vec_normalize_env()
        return vec_normalize.normalize_obs(obs).astype(np.float32) if vec_normalize is not None else obs

    def _scaled_rewards(self, rews: np.ndarray) -> np.ndarray:
        vec_normalize = self.get_vec_normalize_env()
        return vec_normalize.normalize_reward(rews).astype(np.float32) if vec_normalize is not None else rews

    def _log_prob(self, policy: ActorCriticPolicy, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        obs_t = th.as_tensor(obs, device=self.device)
        acts_t = th.as_tensor(acts, device=self.device)
        return policy.get_distribution(obs_t).log_prob(acts_t).cpu().numpy()

    @th.no_grad()
    def _vtrace_targets(self) -> dict[str, np.ndarray]:
        """V-trace value targets and advantages for every demo transition under the current policy."""
        assert self._demo is not None
        demo = self._demo
        obs = self._demo_obs
        next_obs = self._normalize_obs(demo["next_obs"])
        values = self.policy.predict_values(th.as_tensor(obs, device=self.device)).cpu().numpy().ravel()
        next_values = self.policy.predict_values(th.as_tensor(next_obs, device=self.device)).cpu().numpy().ravel()
        log_pi = self._log_prob(self.policy, obs, demo["acts"])
        log_rhos = log_pi - demo["mu_log_prob"]
        rews = self._scaled_rewards(demo["rews"])
        vs, adv = np.zeros_like(values), np.zeros_like(values)
        start = 0
        for end, terminal in zip(demo["ends"], demo["terminal"]):
            bootstrap = 0.0 if terminal else float(next_values[end - 1])
            result = vtrace(
                log_rhos[start:end],
                rews[start:end],
                values[start:end],
                bootstrap,
                self.gamma,
                self.hybrid.rho_bar,
                self.hybrid.c_bar,
            )
            vs[start:end], adv[start:end] = result.vs, result.pg_advantages
            start = end
        return {"obs": obs, "acts": demo["acts"], "vs": vs, "adv": adv, "mu_log_prob": demo["mu_log_prob"]}

    # ----- the update ---------------------------------------------------------------
    def train(self) -> None:
        if self._demo is not None:
            # Once per iteration, not per minibatch: every optimiser step draws from these.
            self._demo_obs = self._normalize_obs(self._demo["obs"])
        self._targets = self._vtrace_targets() if (self._demo is not None and self.hybrid.mix_ratio > 0) else None
        super().train()
        if not self.in_critic_warmup():
            self._actor_iterations += 1
        self.logger.record("hybrid/bc_coeff", self.bc_coefficient())
        self.logger.record("hybrid/actor_lr_factor", self.actor_lr_factor())
        self.logger.record("hybrid/critic_warmup", float(self.in_critic_warmup()))

    def _before_optimizer_step(self) -> bool:
        """Called after PPO's backward and clipping, before Adam steps: add our terms, gate the actor."""
        actor_group, critic_group = self.policy.optimizer.param_groups
        actor_group["lr"] = critic_group["lr"] * self.actor_lr_factor()
        extra = self._auxiliary_loss()
        if extra is not None:
            extra.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        if self.in_critic_warmup():
            for p in actor_group["params"]:
                p.grad = None  # Adam skips parameters without gradients: the actor stays exactly as BC left it
        return True

    def _auxiliary_loss(self) -> th.Tensor | None:
        """The BC term and the demo-sample PPO term that apply now; None if neither does."""
        if self._demo is None or not self.hybrid.uses_demos:
            return None
        terms = []
        coeff = self.bc_coefficient()
        if coeff > 0 and not self.in_critic_warmup():
            idx = self._demo_rng.integers(0, len(self._demo["acts"]), size=self.hybrid.bc_batch_size)
            obs = th.as_tensor(self._demo_obs[idx], device=self.device)
            acts = th.as_tensor(self._demo["acts"][idx], device=self.device)
            terms.append(coeff * -self.policy.get_distribution(obs).log_prob(acts).mean())
        if self._targets is not None:
            n_demo = max(1, round(self.batch_size * self.hybrid.mix_ratio / (1.0 - self.hybrid.mix_ratio)))
            idx = self._demo_rng.integers(0, len(self._targets["acts"]), size=n_demo)
            terms.append(self._demo_ppo_loss(idx, n_demo))
        return sum(terms) if terms else None

    def _demo_ppo_loss(self, idx: np.ndarray, n_demo: int) -> th.Tensor:
        """PPO's clipped surrogate and value loss on demo samples, with V-trace advantages/targets."""
        t = self._targets
        assert t is not None
        obs = th.as_tensor(t["obs"][idx], device=self.device)
        acts = th.as_tensor(t["acts"][idx], device=self.device)
        adv = th.as_tensor(t["adv"][idx], device=self.device, dtype=th.float32)
        if self.normalize_advantage and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        values, log_prob, _ = self.policy.evaluate_actions(obs, acts)
        ratio = th.exp(log_prob - th.as_tensor(t["mu_log_prob"][idx], device=self.device))
        clip = self.clip_range(self._current_progress_remaining)
        policy_loss = -th.min(adv * ratio, adv * th.clamp(ratio, 1 - clip, 1 + clip)).mean()
        value_loss = th.nn.functional.mse_loss(
            th.as_tensor(t["vs"][idx], device=self.device, dtype=th.float32), values.flatten()
        )
        weight = n_demo / (n_demo + self.batch_size)
        if self.in_critic_warmup():
            return weight * self.vf_coef * value_loss
        return weight * (policy_loss + self.vf_coef * value_loss)
