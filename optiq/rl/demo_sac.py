"""Demo-seeded SAC: actor from BC, replay batches mixing demonstrations with online data,
a critic warm-up on the BC policy's own rollouts, and a Q-filtered BC anchor.

* RLPD's symmetric sampling: every batch draws ``demo_fraction`` (default 0.5) from the
  demonstrations and the rest from the online buffer.
* Critic warm-up (as in WSRL): for the first ``critic_warmup_steps`` env steps the BC actor
  collects data (``learning_starts: 0``, so no uniform random actions) and only the critics
  learn; the actor and entropy-coefficient optimisers are gated shut, so the BC actor is not
  pulled around by an untrained Q-function. ``ent_coef`` should start small (``auto_0.01``):
  SAC's default initial temperature 1.0 would dominate a near-deterministic BC actor's
  targets during the warm-up and its updates afterwards.
* Warm-up exploration (``warmup_action_noise``): Gaussian noise on the BC actor's actions
  while only the critics learn. A BC actor's own sigma (~0.04) shows the critic almost no
  action variation, so dQ/da, which the actor follows once it learns, would be extrapolation.
* Actor learning-rate ramp (``actor_lr_warmup_steps``): after the warm-up the actor's LR
  rises linearly from 0, so the actor moves no faster than the critic learns about its new
  actions.
* BC proposals (``bc_proposals``, after IBRL, Hu et al. 2023): a frozen copy of the BC actor
  proposes an action beside the learning actor's, in the rollouts (online critic) and in the TD
  targets (target critic), and the critic's min-Q picks the better of the two per state. A
  still-poor critic/actor pair therefore cannot act or bootstrap worse than BC where the critic
  rates BC higher. The entropy bonus in the targets stays the learning actor's own sample's
  (IBRL uses TD3, without one). Evaluation and the exported model use the learning actor alone,
  so what stock SB3 loads is what was evaluated.
* BC anchor, optionally Q-filtered (Nair et al. 2018): the squared distance between the actor's deterministic
  action and the demo action, counted only on demo samples where the critic rates the demo
  action above the actor's (``bc_filter``). The anchor holds where the demonstrator is still
  better and lets go where RL has overtaken it. Its weight is ``bc_coeff`` times the batch's
  mean |Q(s, a_demo)|, so it keeps its balance with SAC's ``-Q`` term whatever the reward
  scale (TD3+BC's normalisation, Fujimoto & Gu 2021: ``bc_coeff`` 0.4 is their alpha 2.5).
* Return-driven anchor (``bc_reference_episodes`` > 0; optiq/rl/anchor.py, shared with
  HybridPPO): the warm-up starts with that many noise-free BC episodes whose mean return is the
  reference; after the warm-up every finished training episode tightens the anchor when it falls
  short of the reference and loosens it when above, instead of a decay on a clock. With
  ``bc_probe_every`` > 0 only every k-th training episode moves it, acted by the actor's mean
  action (no proposals, no noise), so it is compared with the noise-free reference like with like.
* Guarded release (``release_check_steps`` > 0; optiq/rl/release.py, shared with HybridPPO):
  the evaluated and saved policy changes only after it matched BC's return on noise-free probe
  episodes of its own (their env steps count in the budget).

Demo episodes cut by a time limit are stored with ``done = 0`` (bootstrapped), like SB3's
own buffer does with ``TimeLimit.truncated``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from imitation.data import rollout, types
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from optiq.rl.anchor import ReturnDrivenAnchor
from optiq.rl.averaging import PolicyAveraging
from optiq.rl.optim import HookedOptimizer
from optiq.rl.release import GuardedRelease
from optiq.settings import check_reference_fraction


def min_q(critic: ContinuousCritic, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """The smaller of the twin critics' Q(obs, actions), one value per sample (SAC's pessimistic estimate)."""
    return th.min(th.cat(critic(obs, actions), dim=1), dim=1).values


class DemoMixReplayBuffer(ReplayBuffer):
    """A replay buffer whose samples are ``demo_fraction`` demonstrations, the rest online data."""

    def __init__(self, *args: Any, demo_fraction: float = 0.5, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.demo_fraction = float(demo_fraction)
        self.demo: dict[str, np.ndarray] | None = None
        self.demo_rng = np.random.default_rng(0)

    def set_demonstrations(
        self,
        trajectories: list[types.TrajectoryWithRew],
        scaled_actions: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        """Store demo transitions (raw observations; actions in the policy's [-1, 1] scale)."""
        flat = rollout.flatten_trajectories_with_rew(trajectories)
        self.demo = {
            "obs": flat.obs.astype(np.float32),
            "next_obs": flat.next_obs.astype(np.float32),
            "acts": scaled_actions if scaled_actions is not None else flat.acts.astype(np.float32),
            "rews": flat.rews.astype(np.float32),
            "dones": flat.dones.astype(np.float32),  # 1 only where an episode terminated (not truncated)
        }
        if rng is not None:
            self.demo_rng = rng

    def n_demo_samples(self, batch_size: int) -> int:
        if self.demo is None:
            return 0
        n_online = self.size()
        wanted = round(batch_size * self.demo_fraction)
        return batch_size if n_online == 0 else min(wanted, batch_size)

    def sample_demos(self, n: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """``n`` demo transitions drawn uniformly, normalised like online samples."""
        assert self.demo is not None
        idx = self.demo_rng.integers(0, len(self.demo["acts"]), size=n)
        return ReplayBufferSamples(
            observations=self.to_torch(self._normalize_obs(self.demo["obs"][idx], env)),
            actions=self.to_torch(self.demo["acts"][idx]),
            next_observations=self.to_torch(self._normalize_obs(self.demo["next_obs"][idx], env)),
            dones=self.to_torch(self.demo["dones"][idx].reshape(-1, 1)),
            rewards=self.to_torch(self._normalize_reward(self.demo["rews"][idx].reshape(-1, 1), env)),
            discounts=None,
        )

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        n_demo = self.n_demo_samples(batch_size)
        if n_demo == 0:
            return super().sample(batch_size, env)
        demo = self.sample_demos(n_demo, env)
        if n_demo == batch_size:
            return demo
        online = super().sample(batch_size - n_demo, env)
        return ReplayBufferSamples(
            observations=th.cat([demo.observations, online.observations]),
            actions=th.cat([demo.actions, online.actions]),
            next_observations=th.cat([demo.next_observations, online.next_observations]),
            dones=th.cat([demo.dones, online.dones]),
            rewards=th.cat([demo.rewards, online.rewards]),
            discounts=None,
        )


class LayerNormCritic(ContinuousCritic):
    """SB3's twin Q-networks with LayerNorm after each hidden layer (RLPD, Ball et al. 2023).

    Bounded hidden features keep Q from extrapolating to huge values on actions the data never
    had. Measured here without it: 200 actor steps after the critic warm-up, the BC actor had
    found actions whose Q beat the demo actions on 98-100 % of demo states (so the Q-filter let
    go of BC), Q kept growing (actor loss -20 -> -460) and the return fell from 1,110 to 250.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        **kwargs: Any,
    ):
        super().__init__(
            observation_space, action_space, net_arch, features_extractor, features_dim, activation_fn, **kwargs
        )
        action_dim = get_action_dim(action_space)
        self.q_networks = []
        for idx in range(self.n_critics):
            layers = create_mlp(
                features_dim + action_dim, 1, net_arch, activation_fn, post_linear_modules=[nn.LayerNorm]
            )
            q_net = nn.Sequential(*layers)
            self.add_module(f"qf{idx}", q_net)  # replaces SB3's network of the same name
            self.q_networks.append(q_net)


class LayerNormSACPolicy(SACPolicy):
    """SAC's MlpPolicy with :class:`LayerNormCritic` critics (the actor is SB3's, so BC weights fit)."""

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return LayerNormCritic(**critic_kwargs).to(self.device)


class DemoSAC(GuardedRelease, PolicyAveraging, ReturnDrivenAnchor, SAC):
    """SAC with a demo-mixing replay buffer, a critic-only warm-up and a Q-filtered BC anchor."""

    def __init__(
        self,
        *args: Any,
        critic_warmup_steps: int = 0,
        demo_fraction: float = 0.5,
        bc_coeff: float = 0.0,
        bc_filter: bool = True,
        bc_batch_size: int = 256,
        bc_decay: float = 1.0,
        critic_layer_norm: bool = False,
        warmup_action_noise: float = 0.0,
        actor_lr_warmup_steps: int = 0,
        bc_proposals: bool = False,
        bc_reference_episodes: int = 0,
        bc_adapt_rate: float = 1.0,
        bc_reference_fraction: float = 1.0,
        bc_probe_every: int = 0,
        policy_average_steps: int = 0,
        release_check_steps: int = 0,
        release_check_episodes: int = 2,
        release_reference_episodes: int = 5,
        release_min_fraction: float = 1.0,
        **kwargs: Any,
    ):
        if critic_layer_norm:
            args = tuple(LayerNormSACPolicy if a == "MlpPolicy" else a for a in args)
            if kwargs.get("policy") == "MlpPolicy":
                kwargs["policy"] = LayerNormSACPolicy
        self.critic_layer_norm = bool(critic_layer_norm)
        self.critic_warmup_steps = critic_warmup_steps
        self.bc_coeff = float(bc_coeff)
        self.bc_filter = bool(bc_filter)
        self.bc_batch_size = int(bc_batch_size)
        self.bc_decay = float(bc_decay)
        self.warmup_action_noise = float(warmup_action_noise)
        self.actor_lr_warmup_steps = int(actor_lr_warmup_steps)
        self.bc_proposals = bool(bc_proposals)
        self.bc_proposer: Actor | None = None
        self.bc_reference_episodes = int(bc_reference_episodes)
        self.bc_adapt_rate = float(bc_adapt_rate)
        self.bc_reference_fraction = check_reference_fraction(bc_reference_fraction)
        if bc_probe_every < 0:
            raise ValueError(f"bc_probe_every must be >= 0, got {bc_probe_every}")
        self.bc_probe_every = int(bc_probe_every)
        self._init_anchor()
        self._init_policy_average(policy_average_steps)
        self._init_release(
            release_check_steps, release_check_episodes, release_reference_episodes, release_min_fraction
        )
        self._bc_pass: list[float] = []
        self._bc_chosen: list[float] = []
        self._bc_acted: list[float] = []
        kwargs.setdefault("replay_buffer_class", DemoMixReplayBuffer)
        kwargs.setdefault("replay_buffer_kwargs", {"demo_fraction": demo_fraction})
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.bc_proposals:  # frozen; freeze_bc_proposer() (or a checkpoint) fills in BC's weights
            self.bc_proposer = copy.deepcopy(self.actor)
            self.bc_proposer.optimizer = None  # type: ignore[assignment]
            self.bc_proposer.requires_grad_(False)
        # Closed gates during the warm-up: SAC computes the actor and entropy losses, nothing steps.
        self.actor.optimizer = HookedOptimizer(self.actor.optimizer, self._before_actor_step)  # type: ignore[assignment]
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer = HookedOptimizer(self.ent_coef_optimizer, self.actor_is_learning)  # type: ignore[assignment]
        self._setup_policy_average()
        self._setup_release()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_bc_pass", "_bc_chosen", "_bc_acted"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.bc_proposer is not None:  # checkpoints only: the exported stock model has no proposer
            state_dicts = [*state_dicts, "bc_proposer"]
        return self._release_save_params(self._policy_average_save_params(state_dicts)), variables

    def freeze_bc_proposer(self) -> None:
        """Copy the actor's current weights (BC's, right after the weight transfer) into the proposer."""
        if self.bc_proposer is not None:
            self.bc_proposer.load_state_dict(self.actor.state_dict())

    def choose_with_critic(
        self, obs: th.Tensor, actor_actions: th.Tensor, critic: ContinuousCritic
    ) -> tuple[th.Tensor, th.Tensor]:
        """Per state, the BC proposal or the actor's action, whichever ``critic``'s min-Q rates higher.

        Returns the chosen actions and a boolean mask of the states where BC's was chosen.
        """
        assert self.bc_proposer is not None
        with th.no_grad():
            bc_actions = self.bc_proposer(obs, deterministic=True)
            take_bc = min_q(critic, obs, bc_actions) > min_q(critic, obs, actor_actions)
        return th.where(take_bc[:, None], bc_actions, actor_actions), take_bc

    @contextmanager
    def _bc_proposals_in_targets(self) -> Iterator[None]:
        """During SAC's train(): the next action of every TD target is chosen between actor and BC.

        SAC samples the target's next action with ``actor.action_log_prob`` under ``no_grad``
        (the actor-loss call runs with gradients), so only that call is redirected.
        """
        actor = self.actor
        sample = actor.action_log_prob

        def action_log_prob(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
            actions, log_prob = sample(obs)
            if th.is_grad_enabled():
                return actions, log_prob
            chosen, take_bc = self.choose_with_critic(obs, actions, self.critic_target)
            self._bc_chosen.append(float(take_bc.float().mean()))
            return chosen, log_prob

        actor.action_log_prob = action_log_prob  # type: ignore[method-assign]
        try:
            yield
        finally:
            del actor.action_log_prob  # back to the class's method

    def actor_is_learning(self) -> bool:
        return self.num_timesteps > self.critic_warmup_steps

    def actor_lr_fraction(self) -> float:
        """Share of the actor's scheduled LR in use: 0 -> 1 over ``actor_lr_warmup_steps`` after the warm-up."""
        if self.actor_lr_warmup_steps <= 0:
            return 1.0
        progress = (self.num_timesteps - self.critic_warmup_steps) / self.actor_lr_warmup_steps
        return float(np.clip(progress, 0.0, 1.0))

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        # SB3's uniform random actions before learning_starts stay random (no BC proposal).
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        noisy_warmup = not self.actor_is_learning() and not self.measuring_bc_reference()
        if self.warmup_action_noise > 0 and noisy_warmup and isinstance(self.action_space, spaces.Box):
            # Seeded by (run seed, step), so a resumed run draws the same noise.
            rng = np.random.default_rng([self.seed or 0, self.num_timesteps])
            noise = rng.normal(0.0, self.warmup_action_noise, size=buffer_action.shape)
            buffer_action = np.clip(buffer_action + noise, -1, 1).astype(buffer_action.dtype)
            action = self.policy.unscale_action(buffer_action)
        elif self.bc_proposer is not None and self.actor_is_learning() and self.num_timesteps >= learning_starts:
            obs = self.policy.obs_to_tensor(self._last_obs)[0]
            actions = th.as_tensor(buffer_action, dtype=th.float32, device=self.device)
            chosen, take_bc = self.choose_with_critic(obs, actions, self.critic)
            self._bc_acted.append(float(take_bc.float().mean()))
            buffer_action = chosen.cpu().numpy().astype(buffer_action.dtype)
            action = self.policy.unscale_action(buffer_action)
        by_mean = self.acts_by_mean(n_envs)
        if by_mean.any() and self.num_timesteps >= learning_starts and isinstance(self.action_space, spaces.Box):
            # Reference and probe episodes: the actor's mean action, as evaluation acts.
            mean_action, _ = self.predict(self._last_obs, deterministic=True)
            mean_buffer = self.policy.scale_action(mean_action).astype(buffer_action.dtype)
            buffer_action = np.where(by_mean[:, None], mean_buffer, buffer_action)
            action = self.policy.unscale_action(buffer_action)
        return action, buffer_action

    def bc_coefficient(self) -> float:
        """``bc_coeff * bc_decay ** (thousands of env steps since the warm-up)``, times the
        return-driven scale where ``bc_reference_episodes`` is on."""
        thousands = max(0, self.num_timesteps - self.critic_warmup_steps) / 1000
        return self.bc_coeff * self.bc_decay**thousands * self.bc_scale()

    def set_demonstrations(self, trajectories: list[types.TrajectoryWithRew]) -> None:
        acts = np.concatenate([t.acts for t in trajectories]).astype(np.float32)
        buffer = self.replay_buffer
        assert isinstance(buffer, DemoMixReplayBuffer)
        # Seeded by the run (and, on resume, where it stands), so seeds draw different demo batches.
        rng = np.random.default_rng([self.seed or 0, self.num_timesteps])
        buffer.set_demonstrations(trajectories, self.policy.scale_action(acts).astype(np.float32), rng)

    def _before_actor_step(self) -> bool:
        """Called after SAC's actor backward: add the Q-filtered BC term; keep the gate shut in warm-up."""
        if not self.actor_is_learning():
            return False
        if self.actor_lr_warmup_steps > 0:
            # SB3's train() resets the LR from its schedule every call; scale that value.
            lr = self.lr_schedule(self._current_progress_remaining) * self.actor_lr_fraction()
            for group in self.actor.optimizer.param_groups:
                group["lr"] = lr
        buffer = self.replay_buffer
        coeff = self.bc_coefficient()
        if coeff > 0 and isinstance(buffer, DemoMixReplayBuffer) and buffer.demo is not None:
            demos = buffer.sample_demos(self.bc_batch_size, self._vec_normalize_env)
            (coeff * self.filtered_bc_loss(demos)).backward()
        return True

    def filtered_bc_loss(self, demo: ReplayBufferSamples) -> th.Tensor:
        """Squared error of the actor's deterministic action on demo samples the critic prefers,
        scaled by the batch's mean |Q(s, a_demo)| (see the module docstring)."""
        mean_action = self.actor(demo.observations, deterministic=True)
        per_sample = ((mean_action - demo.actions) ** 2).sum(dim=-1)
        with th.no_grad():
            q_demo = min_q(self.critic, demo.observations, demo.actions)
            scale = q_demo.abs().mean()
            if self.bc_filter:
                q_actor = min_q(self.critic, demo.observations, mean_action.detach())
                keep = (q_demo > q_actor).float()
            else:
                keep = th.ones_like(q_demo)
        self._bc_pass.append(float(keep.mean()))
        return scale * (per_sample * keep).mean()

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.bc_proposer is not None and self.actor_is_learning():
            with self._bc_proposals_in_targets():
                super().train(gradient_steps, batch_size)
        else:
            super().train(gradient_steps, batch_size)
        self.update_policy_average()
        if self._bc_chosen:
            self.logger.record("demo_sac/bc_proposal_chosen", float(np.mean(self._bc_chosen)))
            self._bc_chosen = []
        if self._bc_acted:
            self.logger.record("demo_sac/bc_proposal_acted", float(np.mean(self._bc_acted)))
            self._bc_acted = []
        if self._bc_pass:
            self.logger.record("demo_sac/bc_filter_pass", float(np.mean(self._bc_pass)))
            self._bc_pass = []
        self.logger.record("demo_sac/critic_warmup", float(not self.actor_is_learning()))
        self.logger.record("demo_sac/bc_coeff", self.bc_coefficient())
        self.record_anchor(self.logger, "demo_sac")
        self.logger.record("demo_sac/actor_lr_fraction", self.actor_lr_fraction())
