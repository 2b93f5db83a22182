"""PPO that starts from BC and goes beyond it: critic warm-up, a bounded step size, a BC
anchor that switches itself off where RL does better, and off-policy demonstration samples.

Naive BC -> PPO collapses early because the critic starts untrained and its advantages are
noise (SB3 #543), and because BC leaves a tiny action std (sigma ~ 0.04 on Hopper), so one
PPO epoch moves the policy by several sigmas. :class:`HybridPPO` extends SB3's PPO without
copying its update loop. PPO's own ``train()`` code runs; during it the policy's
``evaluate_actions`` is swapped so the demo batch rides along in PPO's forward and backward pass
(:meth:`HybridPPO._evaluate_with_demos`), and the policy optimiser is wrapped
(:class:`~optiq.rl.optim.HookedOptimizer`) so the actor's learning rate and the warm-up act at
``step()``:

* critic warm-up: for the first ``critic_warmup_steps`` env steps the actor's outputs are
  detached in PPO's loss (and the optimiser gate drops any actor gradient), so only the value
  function learns, on rollouts of the BC policy (PIRLNav recipe), and PPO's gradient clip
  measures the critic's gradient alone (a features extractor with weights that actor and critic
  share, unlike optiq's pixel policies, learns from the value loss then, which moves the actor's
  outputs too);
* actor learning-rate warm-up: the actor's LR then ramps linearly over ``actor_lr_warmup_steps``
  up to ``actor_lr_scale`` times PPO's;
* ``log_std_floor``: BC's log std is raised to at least this value when fine-tuning starts
  (exploration noise PPO can work with; ``target_kl`` in ``bc_rl`` then bounds each update);
  with ``log_std_floor_tolerance`` only if BC's sampled return at the floor is at least that
  share of its return at its own std (optiq/rl/exploration.py, :class:`NoiseToleranceCheck`);
* BC anchor: ``bc_coeff * bc_decay**k`` times a BC loss on demo batches (``bc_loss``: the
  negative log-likelihood, the squared error of the mean action, which leaves the std to
  RL, or ``kl``: KL(BC || policy) on the demo states, whose minimum is the frozen BC policy
  itself, so a tight anchor returns the policy to the BC start rather than training BC on).
  With ``bc_filter`` only demo samples whose discounted return-to-go beats the critic's
  value of their state count (self-imitation, Oh et al. 2018; the Q-filter of Nair et al.
  2018 with a state-value critic): the anchor holds where the demonstrator still does better
  and lets go where the policy has overtaken it, so it needs no decay. With
  ``bc_reference_episodes`` > 0 the anchor's weight follows the returns instead of a clock
  (optiq/rl/anchor.py, shared with DemoSAC): the BC policy's first warm-up episodes set a
  reference return, and each later training episode tightens the anchor when it falls short
  of it and loosens it when above (with ``bc_probe_steps`` > 0, noise-free probe episodes on an
  env of their own instead, both for the reference and the steps: :class:`~optiq.rl.anchor.AnchorProbes`);
* guarded release (``release_check_steps`` > 0; optiq/rl/release.py, shared with DemoSAC): the
  policy that is evaluated and saved changes only after it matched BC's return on noise-free
  probe episodes of its own (their env steps count in the budget);
* demo samples: a ``mix_ratio`` share of each PPO minibatch's loss comes from demonstrations,
  with V-trace value targets and advantages (importance ratios pi_old/mu capped at ``rho_bar``
  / ``c_bar``) and PPO's clipped surrogate with the ratio pi/pi_old, as for on-policy samples.

Behaviour policy of the demos: they were recorded by a deterministic demonstrator, whose
action density is a point mass; the frozen BC Gaussian (the policy the run started from)
stands in for it as mu. Demo episodes cut by the time limit are bootstrapped with the
critic's value of their last state; only true terminations end with zero.

Gradient clipping (``max_grad_norm``) is applied once, by PPO's own loop, to the gradient of
PPO's loss plus the extensions' terms, so the coefficients mean what they say. With every
extension off the update is exactly stock PPO's (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from imitation.data import rollout, types
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel

from optiq.rl.anchor import ReturnDrivenAnchor
from optiq.rl.averaging import PolicyAveraging
from optiq.rl.optim import HookedOptimizer
from optiq.rl.policy_copy import frozen_policy_copy
from optiq.rl.release import GuardedRelease
from optiq.rl.vtrace import discounted_returns, vtrace
from optiq.settings import HybridSettings

# ActorCriticPolicy.evaluate_actions: (obs, actions) -> (values, log_prob, entropy or None)
EvaluateActions = Callable[[th.Tensor, th.Tensor], tuple[th.Tensor, th.Tensor, th.Tensor | None]]
ACTOR_PREFIXES = ("mlp_extractor.policy_net.", "action_net.", "log_std", "pi_features_extractor.")
VTRACE_COVERAGE = 4  # V-trace targets per iteration for this many times the demo samples drawn


@dataclass
class DemoIteration:
    """What one PPO iteration needs of the demos, computed once with the iteration's policy."""

    obs: np.ndarray  # normalised observations
    old_log_prob: np.ndarray | None = None  # log pi_old(a|s): the surrogate's denominator
    vs: np.ndarray | None = None  # V-trace value targets
    adv: np.ndarray | None = None  # V-trace advantages, scaled like the on-policy ones (not centred)
    bc_weight: np.ndarray | None = None  # 1 where the BC anchor applies (the filter), else 0
    vtrace_index: np.ndarray | None = None  # the transitions with V-trace targets this iteration


def actor_parameter_names(policy: ActorCriticPolicy) -> set[str]:
    """The actor's parameters; an unshared features extractor (a CNN) is the actor's too.

    PyTorch names the unshared actor extractor ``features_extractor.`` (its first name), so
    without this a pixel policy's actor CNN would keep learning during the critic warm-up.
    """
    prefixes = ACTOR_PREFIXES if policy.share_features_extractor else (*ACTOR_PREFIXES, "features_extractor.")
    return {name for name, _ in policy.named_parameters() if name.startswith(prefixes)}


class AddGradient(th.autograd.Function):
    """Identity on ``x`` whose backward also back-propagates ``extra_loss`` (a scalar) with weight 1.

    Returning ``AddGradient.apply(x, extra)`` where a caller's loss uses ``x`` makes the caller's
    ``loss.backward()`` produce the gradient of ``loss + extra``, without changing its loss value
    or its code.
    """

    @staticmethod
    def forward(ctx: Any, x: th.Tensor, extra_loss: th.Tensor) -> th.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return grad, th.ones((), dtype=grad.dtype, device=grad.device)


class HybridPPO(GuardedRelease, PolicyAveraging, ReturnDrivenAnchor, PPO):
    """SB3 PPO plus the BC-preserving extensions described in the module docstring."""

    def __init__(self, *args: Any, hybrid: HybridSettings | None = None, **kwargs: Any):
        self.hybrid = hybrid or HybridSettings()
        self._init_anchor()
        self._init_policy_average(self.hybrid.policy_average_steps)
        self._init_release(
            self.hybrid.release_check_steps,
            self.hybrid.release_check_episodes,
            self.hybrid.release_reference_episodes,
            self.hybrid.release_min_fraction,
        )
        self._demo: dict[str, np.ndarray] | None = None
        self._iteration: DemoIteration | None = None
        self._behaviour_policy: ActorCriticPolicy | None = None
        self._actor_iterations = 0
        # NoiseToleranceCheck: its decision (saved, so a resumed run keeps it) and the env steps it
        # spent before the critic warm-up, which then starts after them.
        self.log_std_floor_decision: dict[str, Any] | None = None
        self.pre_warmup_steps = 0
        super().__init__(*args, **kwargs)
        self._demo_rng = np.random.default_rng(self.seed)

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
        self._setup_policy_average()
        self._setup_release()

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return self._release_save_params(self._policy_average_save_params(state_dicts)), variables

    def _excluded_save_params(self) -> list[str]:
        # Demos and the behaviour policy are inputs, re-attached by set_demonstrations on resume.
        return [*super()._excluded_save_params(), "_demo", "_iteration", "_demo_rng", "_behaviour_policy"]

    # ----- demonstrations -------------------------------------------------------------
    def set_demonstrations(
        self, trajectories: list[types.TrajectoryWithRew], behaviour_policy: ActorCriticPolicy | None = None
    ) -> None:
        """Raw-observation demo episodes for the BC anchor and the V-trace demo samples.

        ``trajectories[i].terminal`` must be False for episodes cut by a time limit (they are
        bootstrapped). ``behaviour_policy`` (the BC policy) models the demonstrator's action
        density mu; by default the current policy is frozen for it (right after copying BC weights).
        """
        flat = rollout.flatten_trajectories_with_rew(trajectories)
        obs, acts = flat.obs.astype(np.float32), flat.acts.astype(np.float32)
        lengths = np.array([len(t.acts) for t in trajectories])
        # Every state once (T + 1 per episode, the last one only to bootstrap): transition i's
        # state is states[state_index[i]], its next state states[state_index[i] + 1].
        episode = np.repeat(np.arange(len(trajectories)), lengths)
        self._demo = {
            "obs": obs,
            "states": np.concatenate([np.asarray(t.obs, dtype=np.float32) for t in trajectories]),
            "state_index": np.arange(len(acts)) + episode,
            "acts": acts,
            "rews": flat.rews.astype(np.float32),
            "ends": np.cumsum(lengths),
            "terminal": np.array([bool(t.terminal) for t in trajectories]),
        }
        # A resumed run draws a fresh stream, not the first iterations' demo batches again.
        self._demo_rng = np.random.default_rng([self.seed or 0, self.num_timesteps])
        self._behaviour_policy = frozen_policy_copy(self, behaviour_policy)
        with th.no_grad():
            normalized = self._normalize_obs(obs)
            self._demo["mu_log_prob"] = self._log_prob(self._behaviour_policy, normalized, acts)
            if self.hybrid.bc_loss == "kl":  # the BC policy's action distribution, for the KL anchor
                bc = self._behaviour_policy.get_distribution(th.as_tensor(normalized, device=self.device))
                self._demo["bc_mean"] = bc.distribution.mean.cpu().numpy()
                self._demo["bc_std"] = bc.distribution.stddev.cpu().numpy()

    def apply_log_std_floor(self) -> None:
        """Raise the policy's log std to ``log_std_floor`` (after BC weights were copied in); with
        ``log_std_floor_tolerance`` :class:`~optiq.rl.exploration.NoiseToleranceCheck` decides instead."""
        floor = self.hybrid.log_std_floor
        if floor is not None and self.hybrid.log_std_floor_tolerance is None and hasattr(self.policy, "log_std"):
            with th.no_grad():
                self.policy.log_std.clamp_(min=float(floor))

    @property
    def bc_reference_episodes(self) -> int:  # type: ignore[override]
        return self.hybrid.bc_reference_episodes

    @property
    def bc_adapt_rate(self) -> float:  # type: ignore[override]
        return self.hybrid.bc_adapt_rate

    @property
    def bc_reference_fraction(self) -> float:  # type: ignore[override]
        return self.hybrid.bc_reference_fraction

    @property
    def bc_probe_steps(self) -> int:  # type: ignore[override]
        return self.hybrid.bc_probe_steps

    @property
    def bc_probe_episodes(self) -> int:  # type: ignore[override]
        return self.hybrid.bc_probe_episodes

    def bc_coefficient(self) -> float:
        """``bc_coeff * bc_decay ** (actor iterations)``, times the return-driven scale where it is on."""
        return self.hybrid.bc_coeff * self.hybrid.bc_decay**self._actor_iterations * self.bc_scale()

    def in_critic_warmup(self) -> bool:
        return self.num_timesteps - self.pre_warmup_steps <= self.hybrid.critic_warmup_steps

    def actor_is_learning(self) -> bool:
        return not self.in_critic_warmup()

    def actor_lr_factor(self) -> float:
        if self.in_critic_warmup():
            return 0.0
        if self.hybrid.actor_lr_warmup_steps <= 0:
            return self.hybrid.actor_lr_scale
        progress = (
            self.num_timesteps - self.pre_warmup_steps - self.hybrid.critic_warmup_steps
        ) / self.hybrid.actor_lr_warmup_steps
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

    def _values(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.predict_values(th.as_tensor(obs, device=self.device)).cpu().numpy().ravel()

    def _episode_bounds(self) -> list[tuple[int, int, bool]]:
        assert self._demo is not None
        starts = np.concatenate([[0], self._demo["ends"][:-1]])
        return list(zip(starts.tolist(), self._demo["ends"].tolist(), self._demo["terminal"].tolist()))

    def _vtrace_episodes(self) -> list[int]:
        """Demo episodes whose V-trace targets this iteration computes: a random few covering the draws.

        Demo samples are drawn only from these, so the per-iteration critic and actor passes cost a
        few episodes, not the whole demo set (on Hopper: 4 of 20 episodes, 4x the ~880 draws).
        """
        assert self._demo is not None
        lengths = np.diff(np.concatenate([[0], self._demo["ends"]]))
        updates = self.n_epochs * -(-self.rollout_buffer.buffer_size * self.rollout_buffer.n_envs // self.batch_size)
        wanted = VTRACE_COVERAGE * updates * max(1, round(self.batch_size * self.hybrid.demo_loss_weight))
        chosen, covered = [], 0
        for episode in self._demo_rng.permutation(len(lengths)).tolist():
            if covered >= wanted:
                break
            chosen.append(episode)
            covered += int(lengths[episode])
        return sorted(chosen)

    @th.no_grad()
    def _prepare_demo_iteration(self) -> DemoIteration:
        """Normalised demo observations, and (if used) V-trace targets and the BC filter, for this iteration."""
        assert self._demo is not None
        demo = self._demo
        states = self._normalize_obs(demo["states"])
        it = DemoIteration(obs=states[demo["state_index"]])
        episodes = self._episode_bounds()
        rews = self._scaled_rewards(demo["rews"])
        if self.hybrid.mix_ratio > 0:
            chosen = self._vtrace_episodes()
            it.vtrace_index = np.concatenate([np.arange(episodes[e][0], episodes[e][1]) for e in chosen])
            it.old_log_prob = np.zeros(len(demo["acts"]), dtype=np.float32)
            it.vs, it.adv = np.zeros(len(demo["acts"])), np.zeros(len(demo["acts"]))
            for e in chosen:
                start, end, terminal = episodes[e]
                first = int(demo["state_index"][start])
                values = self._values(states[first : first + end - start + 1])  # the episode's states and x_T
                it.old_log_prob[start:end] = self._log_prob(self.policy, it.obs[start:end], demo["acts"][start:end])
                result = vtrace(
                    it.old_log_prob[start:end] - demo["mu_log_prob"][start:end],
                    rews[start:end],
                    values[:-1],
                    0.0 if terminal else float(values[-1]),  # a time-limit cut continues: bootstrap it
                    self.gamma,
                    self.hybrid.rho_bar,
                    self.hybrid.c_bar,
                )
                it.vs[start:end], it.adv[start:end] = result.vs, result.pg_advantages
            if self.normalize_advantage:
                # The on-policy advantages' scale, without their centring: a demo action the critic
                # rates above V(s) keeps a positive advantage.
                it.adv = it.adv / (float(np.std(self.rollout_buffer.advantages)) + 1e-8)
        if self.hybrid.bc_filter and self.hybrid.bc_coeff > 0:
            state_values = self._values(states)
            values = state_values[demo["state_index"]]
            returns = np.zeros_like(values)
            for start, end, terminal in episodes:
                bootstrap = 0.0 if terminal else float(state_values[demo["state_index"][end - 1] + 1])
                returns[start:end] = discounted_returns(rews[start:end], bootstrap, self.gamma)
            it.bc_weight = (returns > values).astype(np.float32)
        return it

    # ----- the update ---------------------------------------------------------------
    def train(self) -> None:
        if self.probes_drive_anchor and not self.bc_reference_returns:
            # the probes are a callback: a learn() without it would leave the anchor at scale 1 unseen
            raise RuntimeError("bc_probe_steps > 0 needs the AnchorProbes callback in learn() (optiq/rl/anchor.py)")
        iteration = self._iteration = self._prepare_demo_iteration() if self._demo is not None else None
        policy = self.policy
        evaluate = self._evaluate_with_demos if iteration is not None and self.hybrid.uses_demos else None
        if self.in_critic_warmup():
            evaluate = self._critic_only(evaluate or policy.evaluate_actions)
        if evaluate is not None:
            # Only for PPO's loop: the instance attribute shadows the policy's method until removed.
            policy.evaluate_actions = evaluate  # type: ignore[method-assign]
        try:
            super().train()
        finally:
            policy.__dict__.pop("evaluate_actions", None)
            self._iteration = None
        self.update_policy_average()
        if not self.in_critic_warmup():
            self._actor_iterations += 1
        self.logger.record("hybrid/bc_coeff", self.bc_coefficient())
        self.logger.record("hybrid/actor_lr_factor", self.actor_lr_factor())
        self.logger.record("hybrid/critic_warmup", float(self.in_critic_warmup()))
        self.record_anchor(self.logger, "hybrid")
        if hasattr(self.policy, "log_std"):
            self.logger.record("hybrid/std_mean", float(th.exp(self.policy.log_std.detach()).mean()))
        if iteration is not None and iteration.bc_weight is not None:
            self.logger.record("hybrid/bc_filter_pass", float(iteration.bc_weight.mean()))

    @staticmethod
    def _critic_only(evaluate: EvaluateActions) -> EvaluateActions:
        """``evaluate`` with the actor's outputs detached: during the critic warm-up only the value loss
        has a gradient, so PPO's one ``clip_grad_norm_`` measures the critic's gradient alone.

        (Dropping the actor's gradients after the clip, as the optimiser gate does, would leave the
        critic's step shrunk by the norm of an actor gradient that is never applied.)
        """

        def critic_only(obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
            values, log_prob, entropy = evaluate(obs, actions)
            return values, log_prob.detach(), None if entropy is None else entropy.detach()

        return critic_only

    def _before_optimizer_step(self) -> bool:
        """Called after PPO's backward and clipping, before Adam steps: set the actor's LR, gate the actor."""
        actor_group, critic_group = self.policy.optimizer.param_groups
        actor_group["lr"] = critic_group["lr"] * self.actor_lr_factor()
        if self.in_critic_warmup():
            for p in actor_group["params"]:
                p.grad = None  # Adam skips parameters without gradients: the actor's own weights stay as BC left them
        return True

    def _auxiliary_batch(self) -> tuple[np.ndarray, int, int, float] | None:
        """Demo transitions for this minibatch's extra terms: (indices, n_bc, n_demo, BC coefficient).

        The BC anchor uses the first ``bc_batch_size`` of them, the demo samples the first
        ``n_demo`` (drawn from the episodes with V-trace targets this iteration). None if
        neither term applies now.
        """
        assert self._demo is not None and self._iteration is not None
        coeff = self.bc_coefficient()
        n_bc = self.hybrid.bc_batch_size if coeff > 0 and not self.in_critic_warmup() else 0
        n_demo = max(1, round(self.batch_size * self.hybrid.demo_loss_weight)) if self.hybrid.mix_ratio > 0 else 0
        if n_bc == 0 and n_demo == 0:
            return None
        idx = self._demo_rng.integers(0, len(self._demo["acts"]), size=max(n_bc, n_demo))
        if n_demo:
            pool = self._iteration.vtrace_index
            assert pool is not None
            idx[:n_demo] = pool[self._demo_rng.integers(0, len(pool), size=n_demo)]
        return idx, n_bc, n_demo, coeff

    def _evaluate_with_demos(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """SB3's ``evaluate_actions`` for PPO's minibatch, with the demo batch in the same pass.

        The minibatch and the demo batch go through the policy as one batch. PPO gets its rows'
        values, log-probabilities and entropies, what the stock method returns for them (up to
        floating-point rounding: the matrix products run on a larger batch);
        the BC anchor and demo-sample terms are computed from the demo rows and attached to the
        values PPO returns (:class:`AddGradient`), so PPO's single ``backward()`` also
        back-propagates them, and PPO's gradient clipping and step cover their sum. One forward
        and one backward pass instead of two of each: this is most of what the extensions cost.
        """
        policy = self.policy
        batch = self._auxiliary_batch()
        if batch is None:
            return type(policy).evaluate_actions(policy, obs, actions)
        idx, n_bc, n_demo, coeff = batch
        it = self._iteration
        assert it is not None and self._demo is not None
        n = len(actions)
        demo_obs = th.as_tensor(it.obs[idx], device=self.device)
        demo_acts = th.as_tensor(self._demo["acts"][idx], device=self.device).to(actions.dtype)
        # float, as preprocess_obs casts anyway: a uint8 rollout batch is not truncated to demo dtype
        rows = th.cat([obs.float(), demo_obs.float()])
        # only PPO's rows and the demo samples need values, not the rest of the BC batch
        if policy.share_features_extractor:
            pi_features = policy.extract_features(rows)
            vf_features = pi_features[: n + n_demo]
        else:  # an unshared critic extractor (a CNN) runs on the rows that need values only
            pi_features = BaseModel.extract_features(policy, rows, policy.pi_features_extractor)
            vf_features = BaseModel.extract_features(policy, rows[: n + n_demo], policy.vf_features_extractor)
        latent_pi = policy.mlp_extractor.forward_actor(pi_features)
        latent_vf = policy.mlp_extractor.forward_critic(vf_features)
        dist = policy._get_action_dist_from_latent(latent_pi)
        log_prob = dist.log_prob(th.cat([actions, demo_acts.reshape(-1, *actions.shape[1:])]))
        values = policy.value_net(latent_vf)
        entropy = dist.entropy()
        terms = []
        if n_bc:
            mean_actions = dist.mode()[n : n + n_bc] if self.hybrid.bc_loss == "mse" else None
            rows = _rows(dist.distribution, n, n + n_bc) if self.hybrid.bc_loss == "kl" else None
            bc_loss = self._bc_loss(idx[:n_bc], mean_actions, log_prob[n : n + n_bc], demo_acts[:n_bc], rows)
            terms.append(coeff * bc_loss)
        if n_demo:
            terms.append(self._demo_ppo_loss(idx[:n_demo], log_prob[n : n + n_demo], values[n : n + n_demo].flatten()))
        return (
            AddGradient.apply(values[:n], sum(terms)),
            log_prob[:n],
            None if entropy is None else entropy[:n],
        )

    def _bc_loss(
        self,
        idx: np.ndarray,
        mean_actions: th.Tensor | None,
        log_prob: th.Tensor,
        acts: th.Tensor,
        rows: th.distributions.Normal | None = None,
    ) -> th.Tensor:
        """BC loss on demo samples ``idx``; with the filter, samples the policy already beats weigh 0.

        ``mean_actions`` (the policy's mean action of those samples) is needed for ``bc_loss: mse``
        only, ``rows`` (the policy's action distribution on them) for ``bc_loss: kl`` only.
        """
        assert self._iteration is not None
        if self.hybrid.bc_loss == "mse":
            assert mean_actions is not None
            per_sample = ((mean_actions - acts) ** 2).sum(dim=-1)
        elif self.hybrid.bc_loss == "kl":
            # KL(BC || policy): zero, with zero gradient, at the BC policy itself. An NLL anchor on the
            # demos instead keeps training BC past its selected checkpoint while it holds.
            assert rows is not None and self._demo is not None
            bc = th.distributions.Normal(
                th.as_tensor(self._demo["bc_mean"][idx], device=self.device),
                th.as_tensor(self._demo["bc_std"][idx], device=self.device),
            )
            per_sample = th.distributions.kl_divergence(bc, rows).sum(dim=-1)
        else:
            per_sample = -log_prob
        if self._iteration.bc_weight is not None:
            per_sample = per_sample * th.as_tensor(self._iteration.bc_weight[idx], device=self.device)
        return per_sample.mean()

    def _demo_ppo_loss(self, idx: np.ndarray, log_prob: th.Tensor, values: th.Tensor) -> th.Tensor:
        """PPO's clipped surrogate and value loss on demo samples, with V-trace advantages/targets.

        The ratio is pi_theta / pi_old, pi_old being the policy at the start of this iteration
        (so it is 1 at the iteration's first step); the only importance correction towards the
        behaviour policy is V-trace's capped pi_old/mu inside the advantages. The demo part gets
        ``mix_ratio / (1 - mix_ratio)`` times the weight of PPO's minibatch loss, i.e. a
        ``mix_ratio`` share of the total.
        """
        it = self._iteration
        assert it is not None and it.old_log_prob is not None and it.adv is not None and it.vs is not None
        adv = th.as_tensor(it.adv[idx], device=self.device, dtype=th.float32)
        ratio = th.exp(log_prob - th.as_tensor(it.old_log_prob[idx], device=self.device))
        clip = self.clip_range(self._current_progress_remaining)
        policy_loss = -th.min(adv * ratio, adv * th.clamp(ratio, 1 - clip, 1 + clip)).mean()
        value_loss = th.nn.functional.mse_loss(th.as_tensor(it.vs[idx], device=self.device, dtype=th.float32), values)
        weight = self.hybrid.demo_loss_weight
        if self.in_critic_warmup():
            return weight * self.vf_coef * value_loss
        return weight * (policy_loss + self.vf_coef * value_loss)


def _rows(distribution: th.distributions.Distribution, start: int, end: int) -> th.distributions.Normal:
    """Rows ``start:end`` of a batch of diagonal Gaussians (SB3's Box action distributions)."""
    if not isinstance(distribution, th.distributions.Normal):
        raise ValueError("bc_loss: kl needs a Gaussian policy (a Box action space); use bc_loss: nll")
    return th.distributions.Normal(distribution.mean[start:end], distribution.stddev[start:end])
