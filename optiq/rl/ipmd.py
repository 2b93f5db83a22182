"""IPMD (Inverse Policy Mirror Descent; Wu, Ke & Wu, NeurIPS 2023) on SB3's SAC: ``--init ipmd``.

IPMD alternates two steps, both from samples:

* **Policy step** on the *estimated* reward r_psi(s, a): SAC's soft actor-critic update is the
  stochastic policy mirror descent step with the entropy as the regulariser. Every batch SAC
  samples from its replay buffer has its rewards replaced by r_psi (the env's reward is stored
  but never read), so the critics learn the value of the estimated reward. With the average-reward
  criterion (the paper's, the default) the critics learn a differential value: the target is
  r_psi - rho + Q(s', a') - alpha log pi(a'|s') with no discount, rho a running estimate of the
  average entropy-regularised reward r_psi - alpha log pi (:meth:`IPMD.soft_rewards`);
  ``criterion: discounted`` keeps SAC's discounted target (gamma of finetune.sac).
* **Reward step** (the maximum-likelihood IRL gradient): raise r_psi on expert state-actions
  (``expert_batch_size`` from the stage-01 demos) and lower it on the policy's own (as many
  from the replay buffer, or from its ``policy_sample_window`` newest env steps),
  ``loss = mean r_psi(policy) - mean r_psi(expert) + reward_l2 * (mean r_psi(policy)^2 +
  mean r_psi(expert)^2)``; the L2 term keeps the linear objective bounded. By default one
  reward step follows every SAC gradient step; with ``reward_update_interval`` k, one follows
  every k-th (ML-IRL's reference code takes one per 5,000 env steps on 10 fresh rollouts), so
  the policy nearly solves a reward before it moves.
* **The IPMD authors' reward step** (their SB3 code, ``FeiyangWuPK/Inverse-Policy-Mirror-Descent``;
  both off by default): ``policy_actions: current`` pairs the replay states with actions the
  current policy samples there instead of the stored ones, so r_psi is lowered where the policy
  acts now (absorbing rows still follow the stored transitions' falls). ``reward_rms_penalty`` w
  adds w x (RMS of r_psi over the expert's pairs + RMS over the policy's), on top of ``reward_l2``:
  at a fixed mean the RMS is least when every pair of a side has the same reward, so it pins each
  pair (an absorbing row too) to its side's level. With ``reward_l2`` > 0 and w < 1 the optimum of
  a separable pair of sets is still flat, +-(1 - w) / (2 reward_l2); with w >= 1 the loss is
  >= (w - 1)(RMS + RMS) >= 0 and its only minimum is r_psi = 0, so the reward is only what the
  latest steps put in it. The authors use 0.05 x the L2 norms over 512 policy and 10,000 expert
  pairs (about 1.1 and 5 x the RMS; one w here weighs both sides alike) and no ``reward_l2``.

* **Absorbing states** (``absorbing_states``, discounted criterion only; after DAC, Kostrikov et al.
  2019): an episode that terminates (Hopper falls) enters an absorbing state it never leaves,
  whose reward r_psi(absorbing) is learned like any other: the policy's terminal transitions
  add absorbing samples to its side of the reward step, the expert's time-limited demos none.
  The critics' target of a terminal transition is r_psi(s, a) + gamma / (1 - gamma) x
  r_psi(absorbing) instead of r_psi(s, a) + 0, so ending an episode costs what the reward says
  staying in it would have paid. Without it the value of a fall is 0 whatever r_psi's offset,
  and under the average criterion, whose episodes reset, a fall costs nothing at all.
  Demos that end by termination get no absorbing rows on the expert's side (DAC adds them on
  both): Hopper's expert demos end at the time limit; a demonstrator that falls would need them.

The reward net and its optimiser are part of the SB3 model (saved in checkpoints, so a resumed
run continues them); the demos are not and are attached again on resume. Observations stay
raw (no VecNormalize), as for AIRL/GAIL: the reward net compares the policy's transitions with
the demos' raw observations and normalises its inputs by the demos' statistics itself.
``final_model.zip`` is stock SAC; ``reward_net.pt`` holds the learned reward (README).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from imitation.data import types
from stable_baselines3 import SAC
from torch import nn

from optiq.atomic_io import write_with
from optiq.settings import IPMDSettings, check_partial

CRITERIA = ("average", "discounted")
POLICY_ACTIONS = ("stored", "current")


def ipmd_settings(config: dict[str, Any]) -> IPMDSettings:
    """The env's ``imitation.ipmd`` over the typed defaults (optiq/settings.py)."""
    return check_partial(IPMDSettings, (config.get("imitation") or {}).get("ipmd"), "imitation.ipmd")


def ipmd_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """:class:`IPMD`'s own constructor arguments from ``imitation.ipmd``."""
    return dataclasses.asdict(ipmd_settings(config))


class RewardNet(nn.Module):
    """r_psi(s, a): an MLP on (s, a), inputs standardised by the demos' mean and std (buffers, saved with it)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), absorbing: bool = False):
        super().__init__()
        self.obs_dim, self.act_dim, self.hidden = int(obs_dim), int(act_dim), [int(h) for h in hidden]
        self.absorbing = bool(absorbing)  # one more input: 1 for the absorbing state, 0 for real pairs
        layers: list[nn.Module] = []
        width = self.obs_dim + self.act_dim + int(self.absorbing)
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("obs_mean", th.zeros(self.obs_dim))
        self.register_buffer("obs_std", th.ones(self.obs_dim))

    def set_input_statistics(self, obs: np.ndarray) -> None:
        self.obs_mean.copy_(th.as_tensor(obs.mean(axis=0), dtype=th.float32))
        self.obs_std.copy_(th.as_tensor(obs.std(axis=0) + 1e-6, dtype=th.float32))

    def inputs(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """What the MLP sees: standardised observations and the actions, side by side (and a 0 flag)."""
        columns = [(obs.float() - self.obs_mean) / self.obs_std, actions.float()]
        if self.absorbing:
            columns.append(th.zeros(len(obs), 1, device=obs.device))
        return th.cat(columns, dim=1)

    def absorbing_inputs(self, n: int) -> th.Tensor:
        """``n`` rows of the absorbing state: the demos' mean observation, zero action, flag 1 (DAC's encoding)."""
        assert self.absorbing, "a reward net without absorbing_states has no absorbing input"
        rows = th.zeros(n, self.obs_dim + self.act_dim + 1, device=self.obs_mean.device)
        rows[:, -1] = 1.0
        return rows

    def absorbing_reward(self) -> th.Tensor:
        """r_psi of the absorbing state, shape (1, 1)."""
        return self.net(self.absorbing_inputs(1))

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Rewards of a batch, shape (n, 1)."""
        return self.net(self.inputs(obs, actions))

    def config(self) -> dict[str, Any]:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "hidden": self.hidden, "absorbing": self.absorbing}


class _EstimatedRewards:
    """The replay buffer as SAC's train() sees it: every sampled batch carries r_psi instead of the env's reward."""

    def __init__(self, model: IPMD):
        self.model = model
        self.buffer = model.replay_buffer

    def sample(self, batch_size: int, env: Any = None) -> Any:
        data = self.buffer.sample(batch_size, env=env)
        with th.no_grad():
            rewards = self.model.reward_net(data.observations, data.actions)
            if self.model.absorbing_states:  # a terminal transition enters the absorbing state for good
                gamma = self.model.gamma
                rewards = rewards + data.dones * gamma / (1 - gamma) * self.model.reward_net.absorbing_reward()
        if self.model.criterion == "average":
            self.model.update_average_reward(float(self.model.soft_rewards(rewards, data).mean()))
            # differential target: r - rho + Q(s', a') - alpha log pi(a'|s'), undiscounted
            return data._replace(rewards=rewards - self.model.average_reward, discounts=th.ones_like(rewards))
        return data._replace(rewards=rewards)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.buffer, name)


class IPMD(SAC):
    """SAC whose critics learn the estimated reward r_psi, with reward updates between policy updates."""

    def __init__(
        self,
        *args: Any,
        expert_batch_size: int = 256,
        reward_hid_sizes: Sequence[int] = (256, 256),
        reward_learning_rate: float = 3e-4,
        reward_l2: float = 0.1,
        reward_grad_penalty: float = 0.0,
        reward_rms_penalty: float = 0.0,
        policy_actions: str = "stored",
        absorbing_states: bool = False,
        reward_updates_per_step: int = 1,
        reward_update_interval: int = 1,
        policy_sample_window: int = 0,
        criterion: str = "average",
        average_reward_rate: float = 0.005,
        **kwargs: Any,
    ):
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got '{criterion}'")
        self.expert_batch_size = int(expert_batch_size)
        self.reward_hid_sizes = [int(h) for h in reward_hid_sizes]
        self.reward_learning_rate = float(reward_learning_rate)
        self.reward_l2 = float(reward_l2)
        if reward_grad_penalty < 0:
            raise ValueError(f"reward_grad_penalty must be >= 0, got {reward_grad_penalty}")
        self.reward_grad_penalty = float(reward_grad_penalty)
        if reward_rms_penalty < 0:
            raise ValueError(f"reward_rms_penalty must be >= 0, got {reward_rms_penalty}")
        self.reward_rms_penalty = float(reward_rms_penalty)
        if policy_actions not in POLICY_ACTIONS:
            raise ValueError(f"policy_actions must be one of {', '.join(POLICY_ACTIONS)}, got '{policy_actions}'")
        self.policy_actions = policy_actions
        if absorbing_states and criterion != "discounted":
            raise ValueError(
                "absorbing_states needs criterion: discounted (an absorbing state's average-reward value is undefined)"
            )
        self.absorbing_states = bool(absorbing_states)
        self.reward_updates_per_step = int(reward_updates_per_step)
        if reward_update_interval < 1:
            raise ValueError(f"reward_update_interval must be >= 1, got {reward_update_interval}")
        self.reward_update_interval = int(reward_update_interval)
        if policy_sample_window < 0:
            raise ValueError(f"policy_sample_window must be >= 0, got {policy_sample_window}")
        self.policy_sample_window = int(policy_sample_window)
        self.criterion = criterion
        self.average_reward_rate = float(average_reward_rate)
        self.average_reward = 0.0  # rho: running mean of r_psi - alpha log pi over sampled batches (average criterion)
        self.expert_obs: np.ndarray | None = None
        self.expert_acts: np.ndarray | None = None  # scaled to [-1, 1] like the replay buffer's
        self._reward_losses: list[float] = []
        self._current_action_draws = 0  # policy_actions: current: seeds each draw's own generator state
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        obs_dim = int(np.prod(self.observation_space.shape))
        act_dim = int(np.prod(self.action_space.shape))
        self.reward_net = RewardNet(obs_dim, act_dim, self.reward_hid_sizes, self.absorbing_states).to(self.device)
        self.reward_optimizer = th.optim.Adam(self.reward_net.parameters(), lr=self.reward_learning_rate)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "expert_obs", "expert_acts", "_reward_losses"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "reward_net", "reward_optimizer"], variables

    def set_demonstrations(self, trajectories: Sequence[types.Trajectory]) -> None:
        """The expert state-actions the reward step raises r_psi on (raw observations, actions scaled like SAC's)."""
        obs = np.concatenate([np.asarray(t.obs[:-1], dtype=np.float32) for t in trajectories])
        acts = np.concatenate([np.asarray(t.acts, dtype=np.float32) for t in trajectories])
        self.expert_obs = obs.reshape(len(obs), -1)
        self.expert_acts = scale_actions(acts, self.action_space).reshape(len(acts), -1)
        self.reward_net.set_input_statistics(self.expert_obs)

    def update_average_reward(self, batch_mean: float) -> None:
        self.average_reward += self.average_reward_rate * (batch_mean - self.average_reward)

    def entropy_coefficient(self) -> float:
        """SAC's current temperature alpha (learned or fixed)."""
        if self.ent_coef_optimizer is not None:
            return float(th.exp(self.log_ent_coef.detach()))
        return float(self.ent_coef_tensor)

    @th.no_grad()
    def soft_rewards(self, rewards: th.Tensor, data: Any) -> th.Tensor:
        """Per transition, the reward SAC's soft target really adds: r_psi - alpha (1 - done) log pi(a'|s').

        rho must be the average of this, not of r_psi alone: the target carries the entropy bonus
        of the next action, and with no discount a rho that leaves it out makes every differential
        Q-value drift by alpha times the policy's entropy per step of the remaining episode (the
        entropy-regularised average reward; Wu et al. 2023 regularise the average the same way).
        The next action is drawn with the CPU torch RNG forked, so on CPU SAC's own draws are unchanged.
        """
        with th.random.fork_rng(devices=[]):
            _, log_prob = self.actor.action_log_prob(data.next_observations)
        return rewards - self.entropy_coefficient() * (1 - data.dones) * log_prob.reshape(-1, 1)

    def reward_loss(
        self,
        expert_obs: th.Tensor,
        expert_acts: th.Tensor,
        policy_obs: th.Tensor,
        policy_acts: th.Tensor,
        policy_dones: th.Tensor | None = None,
    ) -> th.Tensor:
        """Lower is better: r_psi high on the expert's pairs, low on the policy's, both kept near 0 by the L2 term.

        With ``reward_grad_penalty`` > 0, plus that weight times the mean (|grad r_psi| - 1)^2 at random
        points between expert and policy pairs (WGAN-GP, Gulrajani et al. 2017; as DAC, Kostrikov et
        al. 2019, did for adversarial imitation): without it the reward separates the two sets
        outright and is flat over the policy's states (measured on Hopper-v5 at 100k: about -5 per
        step on the policy's own standing episodes, on random and on zero actions alike, +5 on the
        expert's), so the policy step has no slope to climb towards the expert's states.
        """
        expert_inputs = self.reward_net.inputs(expert_obs, expert_acts)
        policy_inputs = self.reward_net.inputs(policy_obs, policy_acts)
        policy_rows = policy_inputs
        if self.absorbing_states and policy_dones is not None:
            # Every terminal transition of the policy's is followed by one absorbing sample. They are
            # left out of the penalty's pairs: the absorbing input sits at the demos' mean state, so
            # a unit slope from the expert's pairs would hold its reward near theirs (measured: the
            # policy then fell at once, episodes of 6 steps at 20k).
            n_absorbing = int(policy_dones.sum())
            policy_rows = th.cat([policy_inputs, self.reward_net.absorbing_inputs(n_absorbing)])
        expert_rewards = self.reward_net.net(expert_inputs)
        policy_rewards = self.reward_net.net(policy_rows)
        expert, policy = expert_rewards.mean(), policy_rewards.mean()
        loss = policy - expert + self.reward_l2 * (policy**2 + expert**2)
        if self.reward_rms_penalty > 0:
            # Per pair, not per mean (see the module docstring for its optimum at w < 1 and w >= 1).
            spread = root_mean_square(expert_rewards) + root_mean_square(policy_rewards)
            loss = loss + self.reward_rms_penalty * spread
        if self.reward_grad_penalty > 0:
            mix = th.rand(len(expert_inputs), 1, device=expert_inputs.device)
            between = (mix * expert_inputs + (1 - mix) * policy_inputs).detach().requires_grad_(True)
            (grad,) = th.autograd.grad(self.reward_net.net(between).sum(), between, create_graph=True)
            loss = loss + self.reward_grad_penalty * ((grad.norm(dim=1) - 1) ** 2).mean()
        return loss

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self.expert_obs is None or self.expert_acts is None:
            raise RuntimeError("IPMD needs set_demonstrations() before training")
        buffer = self.replay_buffer
        updates_before = self._n_updates
        self.replay_buffer = _EstimatedRewards(self)  # type: ignore[assignment]
        try:
            super().train(gradient_steps, batch_size)  # the policy step, on r_psi
        finally:
            self.replay_buffer = buffer
        # One reward update per reward_update_interval SAC gradient steps, counted on SB3's saved
        # _n_updates, so a resumed run keeps the same schedule.
        interval = self.reward_update_interval
        reward_updates = self._n_updates // interval - updates_before // interval
        for _ in range(reward_updates * self.reward_updates_per_step):
            self._reward_step()
        if self._reward_losses:
            self.logger.record("ipmd/reward_loss", float(np.mean(self._reward_losses)))
        self.logger.record("ipmd/average_reward", self.average_reward)
        if self.absorbing_states:
            with th.no_grad():
                self.logger.record("ipmd/absorbing_reward", float(self.reward_net.absorbing_reward()))
        self._reward_losses = []

    def _reward_step(self) -> None:
        assert self.expert_obs is not None and self.expert_acts is not None and self.replay_buffer is not None
        index = np.random.randint(0, len(self.expert_obs), size=self.expert_batch_size)
        expert_obs = th.as_tensor(self.expert_obs[index], device=self.device)
        expert_acts = th.as_tensor(self.expert_acts[index], device=self.device)
        policy = self._policy_samples(self.expert_batch_size)
        actions = policy.actions if self.policy_actions == "stored" else self.current_actions(policy.observations)
        loss = self.reward_loss(expert_obs, expert_acts, policy.observations, actions, policy.dones)
        self.reward_optimizer.zero_grad()
        loss.backward()
        self.reward_optimizer.step()
        self._reward_losses.append(float(loss.detach()))

    @th.no_grad()
    def current_actions(self, observations: th.Tensor) -> th.Tensor:
        """Actions the current policy samples at ``observations`` (scaled like the buffer's), for
        ``policy_actions: current``: the reward step then lowers r_psi where the policy acts now, at
        the states it has visited, as the IPMD authors' code does.

        Their noise comes from a generator state of their own (forked, then seeded by the run's seed,
        SAC's update count and a draw counter; the counter is saved with the model), so SAC's own
        draws, on CPU and on a GPU, are those of a run with stored actions, and neither reuses the
        other's numbers."""
        self._current_action_draws += 1
        seed = np.random.SeedSequence([self.seed or 0, self._n_updates, self._current_action_draws])
        devices = [self.device] if self.device.type == "cuda" else []
        with th.random.fork_rng(devices=devices):
            th.manual_seed(int(seed.generate_state(1)[0]))
            actions, _ = self.actor.action_log_prob(observations)
        return actions

    def _policy_samples(self, n: int) -> Any:
        """``n`` of the policy's transitions (raw observations, like the demos): drawn from the whole
        replay buffer, or from its ``policy_sample_window`` most recent env steps (at most the
        buffer), which estimate E_pi[r_psi] for the current policy rather than for everything it has been."""
        buffer = self.replay_buffer
        assert buffer is not None
        if self.policy_sample_window <= 0:
            return buffer.sample(n, env=None)
        # Rows of n_envs transitions each (one env step); a memory-optimised full buffer's slot ``pos``
        # holds the newest next-observation, not a valid observation (SB3's sample() skips it too).
        size = buffer.buffer_size - int(buffer.optimize_memory_usage) if buffer.full else buffer.pos
        window = min(self.policy_sample_window, size)
        back = np.random.randint(1, window + 1, size=n)  # 1: the newest transition
        return buffer._get_samples((buffer.pos - back) % buffer.buffer_size, env=None)


def root_mean_square(values: th.Tensor) -> th.Tensor:
    """sqrt(mean(values^2)), with a floor inside the root so its gradient stays finite at 0."""
    return (values.pow(2).mean() + 1e-12).sqrt()


def save_reward_net(model: IPMD, path: Any) -> None:
    """``reward_net.pt``: the learned r_psi with what rebuilds it (:func:`load_reward_net`)."""
    payload = {
        "config": model.reward_net.config(),
        "state_dict": model.reward_net.state_dict(),
        "criterion": model.criterion,
        "average_reward": model.average_reward,
        "actions": "scaled to [-1, 1] by the action space's bounds (SB3's policy.scale_action)",
    }
    write_with(Path(path), lambda p: th.save(payload, p))


def load_reward_net(path: Any, device: str = "cpu") -> RewardNet:
    """The r_psi of a ``reward_net.pt``: ``net(obs, scaled_actions)`` gives rewards of shape (n, 1)."""
    payload = th.load(path, map_location=device, weights_only=True)
    config = payload["config"]
    net = RewardNet(config["obs_dim"], config["act_dim"], config["hidden"], config.get("absorbing", False))
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def scale_actions(actions: np.ndarray, space: Any) -> np.ndarray:
    """Env actions in the reward net's [-1, 1] scale (SB3's ``policy.scale_action``, one formula), clipped."""
    low, high = space.low, space.high
    return np.clip(2.0 * ((np.asarray(actions, dtype=np.float32) - low) / (high - low)) - 1.0, -1.0, 1.0)


def reward_traces(reward_path: Any, demos_path: Any, env_id: str, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Learned and true reward per step along the first demo episode and one random-action episode.

    What stage 06 plots for an IPMD run: a reward that imitates should score the expert's steps
    above the random ones, whatever its scale (it is learned only up to shaping and scale).
    """
    import gymnasium as gym

    from optiq.demos.storage import load_demos
    from optiq.envs import make_env

    net = load_reward_net(reward_path)
    env = make_env(env_id)
    demo = load_demos(demos_path, env.observation_space, env.action_space)[0]
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    random_obs, random_acts, random_rews = [], [], []
    for _ in range(1000):
        action = env.action_space.sample()
        random_obs.append(obs)
        random_acts.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        random_rews.append(float(reward))
        if terminated or truncated:
            break
    env.close()
    assert isinstance(env.action_space, gym.spaces.Box)
    traces = {}
    for name, o, a, r in (
        ("expert", np.asarray(demo.obs[:-1]), np.asarray(demo.acts), np.asarray(demo.rews)),
        ("random", np.asarray(random_obs), np.asarray(random_acts), np.asarray(random_rews)),
    ):
        with th.no_grad():
            learned = net(th.as_tensor(o, dtype=th.float32), th.as_tensor(scale_actions(a, env.action_space)))
        traces[name] = {"true": r.astype(float), "learned": learned.numpy().ravel().astype(float)}
    return traces
