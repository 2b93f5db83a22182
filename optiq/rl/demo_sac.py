"""Demo-seeded SAC: actor from BC, replay batches mixing demonstrations with online data.

RLPD's recipe: every batch draws a fixed ``demo_fraction`` (default 0.5, "symmetric
sampling") from the demonstrations and the rest from the online buffer. During the first
``critic_warmup_steps`` env steps only the critics learn: the actor and the entropy
coefficient optimisers are gated shut, so the BC actor is not pulled around by an
untrained Q-function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from imitation.data import rollout, types
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from optiq.rl.optim import HookedOptimizer


class DemoMixReplayBuffer(ReplayBuffer):
    """A replay buffer whose samples are ``demo_fraction`` demonstrations, the rest online data."""

    def __init__(self, *args: Any, demo_fraction: float = 0.5, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.demo_fraction = float(demo_fraction)
        self.demo: dict[str, np.ndarray] | None = None
        self._demo_rng = np.random.default_rng(0)

    def set_demonstrations(
        self, trajectories: list[types.TrajectoryWithRew], scaled_actions: np.ndarray | None = None
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

    def n_demo_samples(self, batch_size: int) -> int:
        if self.demo is None:
            return 0
        n_online = self.size()
        wanted = round(batch_size * self.demo_fraction)
        return batch_size if n_online == 0 else min(wanted, batch_size)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        n_demo = self.n_demo_samples(batch_size)
        if n_demo == 0:
            return super().sample(batch_size, env)
        assert self.demo is not None
        idx = self._demo_rng.integers(0, len(self.demo["acts"]), size=n_demo)
        demo = ReplayBufferSamples(
            observations=self.to_torch(self._normalize_obs(self.demo["obs"][idx], env)),
            actions=self.to_torch(self.demo["acts"][idx]),
            next_observations=self.to_torch(self._normalize_obs(self.demo["next_obs"][idx], env)),
            dones=self.to_torch(self.demo["dones"][idx].reshape(-1, 1)),
            rewards=self.to_torch(self._normalize_reward(self.demo["rews"][idx].reshape(-1, 1), env)),
            discounts=None,
        )
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


class DemoSAC(SAC):
    """SAC with a demo-mixing replay buffer and a critic-only warm-up."""

    def __init__(self, *args: Any, critic_warmup_steps: int = 0, demo_fraction: float = 0.5, **kwargs: Any):
        self.critic_warmup_steps = critic_warmup_steps
        kwargs.setdefault("replay_buffer_class", DemoMixReplayBuffer)
        kwargs.setdefault("replay_buffer_kwargs", {"demo_fraction": demo_fraction})
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        # Closed gates during the warm-up: SAC computes the actor and entropy losses, nothing steps.
        self.actor.optimizer = HookedOptimizer(self.actor.optimizer, self.actor_is_learning)  # type: ignore[assignment]
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer = HookedOptimizer(self.ent_coef_optimizer, self.actor_is_learning)  # type: ignore[assignment]

    def actor_is_learning(self) -> bool:
        return self.num_timesteps > self.critic_warmup_steps

    def set_demonstrations(self, trajectories: list[types.TrajectoryWithRew]) -> None:
        acts = np.concatenate([t.acts for t in trajectories]).astype(np.float32)
        buffer = self.replay_buffer
        assert isinstance(buffer, DemoMixReplayBuffer)
        buffer.set_demonstrations(trajectories, self.policy.scale_action(acts).astype(np.float32))
