"""HybridPPO's demo terms: surrogate against pi_old, truncation bootstraps, one gradient clip,
the demo share, and the advantage-filtered BC anchor."""

import numpy as np
import pytest
import torch as th
from imitation.data import types
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from optiq.envs import make_vec
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings, actor_parameter_names
from tests.helpers import synthetic_trajectories

KWARGS = dict(n_steps=128, batch_size=64, n_epochs=2, seed=3, device="cpu", policy_kwargs={"net_arch": [32, 32]})


class LearnedFeatures(BaseFeaturesExtractor):
    """A features extractor with weights of its own (as a pixel policy's CNN has)."""

    def __init__(self, observation_space):
        super().__init__(observation_space, features_dim=16)
        self.linear = th.nn.Linear(observation_space.shape[0], 16)

    def forward(self, obs):
        return th.tanh(self.linear(obs))


def _model(settings: HybridSettings, **kwargs) -> HybridPPO:
    return HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=settings, **{**KWARGS, **kwargs})


def _episode(length: int, terminal: bool, reward: float = 1.0, seed: int = 0) -> types.TrajectoryWithRew:
    rng = np.random.default_rng(seed)
    return types.TrajectoryWithRew(
        obs=rng.normal(size=(length + 1, 11)).astype(np.float32),
        acts=rng.uniform(-1, 1, size=(length, 3)).astype(np.float32),
        infos=None,
        terminal=terminal,
        rews=np.full(length, reward, dtype=np.float32),
    )


def _constant_critic(model: HybridPPO, value: float) -> None:
    with th.no_grad():
        model.policy.value_net.weight.zero_()
        model.policy.value_net.bias.fill_(value)


def test_demo_surrogate_ratio_is_one_at_an_iterations_first_step():
    model = _model(HybridSettings(mix_ratio=0.25))
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    model.learn(512)  # the policy moves away from the frozen BC policy mu
    first_ratios = []
    original = model._demo_ppo_loss

    def spy(idx, *args):
        if not first_ratios:
            it = model._iteration
            obs = th.as_tensor(it.obs[idx])
            log_prob = model.policy.get_distribution(obs).log_prob(th.as_tensor(model._demo["acts"][idx]))
            first_ratios.append(th.exp(log_prob - th.as_tensor(it.old_log_prob[idx])).detach())
            first_ratios.append(th.exp(log_prob - th.as_tensor(model._demo["mu_log_prob"][idx])).detach())
        return original(idx, *args)

    model._demo_ppo_loss = spy
    model.learn(128, reset_num_timesteps=False)
    vs_old, vs_mu = first_ratios
    assert th.allclose(vs_old, th.ones_like(vs_old), atol=1e-5)
    assert not th.allclose(vs_mu, th.ones_like(vs_mu), atol=1e-3)  # against mu it would not be 1


@pytest.mark.parametrize("terminal", [True, False])
def test_truncated_demo_episodes_bootstrap_and_terminated_ones_do_not(terminal):
    model = _model(HybridSettings(mix_ratio=0.25, rho_bar=100.0, c_bar=100.0, bc_coeff=1.0, bc_filter=True))
    model.set_demonstrations([_episode(3, terminal=terminal)], behaviour_policy=model.policy)  # pi = mu
    model.rollout_buffer.advantages[:] = 1.0  # a finite scale for the demo advantages
    _constant_critic(model, 10.0)
    it = model._prepare_demo_iteration()
    g, tail = model.gamma, (0.0 if terminal else 10.0)
    # with pi = mu V-trace targets are n-step returns, bootstrapped with V(x_T) only after a time-limit cut
    np.testing.assert_allclose(it.vs, [1 + g + g**2 + g**3 * tail, 1 + g + g**2 * tail, 1 + g * tail], rtol=1e-5)
    # the filter's return-to-go at the last step: 1 (< V = 10) if terminated, 1 + 10 g (> 10) if truncated
    assert it.bc_weight[-1] == (0.0 if terminal else 1.0)


def _learn_recording_clips(model: HybridPPO, monkeypatch, steps: int, at_clip) -> tuple[list, list[float]]:
    """Learn ``steps``; returns ``at_clip(max_norm)`` of every gradient clip and the gradient norm
    each optimiser step applied (after PPO's clip and the warm-up gate)."""
    seen, applied = [], []
    original = th.nn.utils.clip_grad_norm_

    def recording_clip(params, max_norm, *args, **kwargs):
        seen.append(at_clip(max_norm))
        return original(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(th.nn.utils, "clip_grad_norm_", recording_clip)
    inner_step = model.policy.optimizer.optimizer.step

    def recording_step(closure=None):
        grads = [p.grad.flatten() for p in model.policy.parameters() if p.grad is not None]
        applied.append(float(th.cat(grads).norm()))
        return inner_step(closure)

    model.policy.optimizer.optimizer.step = recording_step
    model.learn(steps)
    return seen, applied


def test_gradient_is_clipped_once_over_ppo_and_demo_terms(monkeypatch):
    model = _model(HybridSettings(bc_coeff=5.0), max_grad_norm=0.01)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    calls, applied = _learn_recording_clips(model, monkeypatch, 128, float)
    assert calls == [0.01] * len(applied) and applied  # one clip per optimiser step, PPO's own
    assert max(applied) <= 0.01 + 1e-6  # nothing adds gradient after PPO's clip


def test_demo_samples_get_the_configured_share_of_the_loss():
    assert HybridSettings(mix_ratio=0.25).demo_loss_weight == pytest.approx(1 / 3)
    weight = HybridSettings(mix_ratio=0.25).demo_loss_weight
    assert weight / (1 + weight) == pytest.approx(0.25)


def test_log_std_floor_raises_a_tiny_bc_std_only():
    model = _model(HybridSettings(log_std_floor=-2.0))
    with th.no_grad():
        model.policy.log_std.copy_(th.tensor([-3.3, -1.0, -2.5]))
    model.apply_log_std_floor()
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), [-2.0, -1.0, -2.0])


def _actor_change_with_critic(value: float) -> float:
    from stable_baselines3.common.callbacks import BaseCallback

    class ZeroAdvantages(BaseCallback):
        def _on_step(self) -> bool:
            _constant_critic(self.model, value)
            return True

        def _on_rollout_end(self) -> None:
            self.model.rollout_buffer.advantages[:] = 0.0
            _constant_critic(self.model, value)

    settings = HybridSettings(bc_coeff=10.0, bc_filter=True, bc_loss="mse", bc_batch_size=128)
    model = _model(settings, ent_coef=0.0, vf_coef=0.0, learning_rate=1e-3)
    model.set_demonstrations([_episode(50, terminal=True, reward=1.0, seed=s) for s in range(2)])
    before = model.policy.action_net.weight.detach().clone()
    model.learn(256, callback=ZeroAdvantages())
    return float((model.policy.action_net.weight.detach() - before).abs().max())


def test_filtered_bc_switches_off_where_the_critic_prefers_the_policy():
    # Demo returns-to-go are at most 50: a critic valuing every state at 1e4 prefers the policy.
    assert _actor_change_with_critic(1e4) == 0.0
    # A critic valuing states at -1e4 rates the demos better everywhere: the anchor pulls.
    assert _actor_change_with_critic(-1e4) > 1e-4


@pytest.mark.parametrize(("bc_loss", "shared"), [("nll", True), ("mse", True), ("kl", True), ("nll", False)])
def test_one_pass_with_demos_gives_the_gradient_of_two_separate_passes(bc_loss, shared):
    """PPO's minibatch and the demo batch share one forward/backward pass; the result must equal
    PPO's loss on the stock evaluate_actions plus the demo terms computed on their own. With an
    unshared critic extractor (a pixel policy's CNN) the critic sees only the rows that need values."""
    settings = HybridSettings(mix_ratio=0.25, bc_coeff=0.7, bc_loss=bc_loss, bc_filter=True, critic_warmup_steps=0)
    policy_kwargs = {"net_arch": [32, 32], "share_features_extractor": shared}
    if not shared:
        policy_kwargs["features_extractor_class"] = LearnedFeatures
    model = _model(settings, policy_kwargs=policy_kwargs)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    model.learn(256)  # fills the rollout buffer; the policy moves away from mu
    model._iteration = model._prepare_demo_iteration()
    policy = model.policy
    gen = th.Generator().manual_seed(0)
    obs, acts = th.randn(64, 11, generator=gen), th.rand(64, 3, generator=gen) * 2 - 1

    def ppo_like_loss(values, log_prob, entropy):  # any loss of all three outputs
        return (values.flatten() ** 2).mean() - log_prob.mean() - 0.01 * entropy.mean()

    def gradient(loss):
        policy.optimizer.zero_grad()
        loss.backward()
        return th.cat([p.grad.flatten() for p in policy.parameters()])

    rng_state = model._demo_rng.bit_generator.state
    critic_rows = []
    hook = policy.vf_features_extractor.register_forward_hook(lambda m, i, o: critic_rows.append(len(o)))
    combined = model._evaluate_with_demos(obs, acts)
    hook.remove()
    one_pass = gradient(ppo_like_loss(*combined))

    model._demo_rng.bit_generator.state = rng_state
    idx, n_bc, n_demo, coeff = model._auxiliary_batch()
    stock = type(policy).evaluate_actions(policy, obs, acts)
    for ours, theirs in zip(combined, stock):
        assert th.allclose(ours.detach(), theirs.detach(), atol=1e-6)  # PPO sees what stock PPO returns
    if not shared:  # the critic extractor ran once, on PPO's rows and the demo samples only
        assert critic_rows == [len(obs) + n_demo] and n_bc > n_demo
    demo_obs = th.as_tensor(model._iteration.obs[idx])
    demo_acts = th.as_tensor(model._demo["acts"][idx])
    demo_values, demo_log_prob, _ = type(policy).evaluate_actions(policy, demo_obs, demo_acts)
    demo_dist = policy.get_distribution(demo_obs[:n_bc])
    mean_actions = demo_dist.mode() if bc_loss == "mse" else None
    rows = demo_dist.distribution if bc_loss == "kl" else None
    extra = coeff * model._bc_loss(idx[:n_bc], mean_actions, demo_log_prob[:n_bc], demo_acts[:n_bc], rows)
    extra = extra + model._demo_ppo_loss(idx[:n_demo], demo_log_prob[:n_demo], demo_values[:n_demo].flatten())
    two_passes = gradient(ppo_like_loss(*stock) + extra)
    assert extra.abs() > 1e-3  # the demo terms contribute
    assert th.allclose(one_pass, two_passes, rtol=1e-4, atol=1e-6)
    ppo_only = gradient(ppo_like_loss(*type(policy).evaluate_actions(policy, obs, acts)))
    assert not th.allclose(one_pass, ppo_only, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(("demos", "shared"), [(False, True), (True, True), (True, False)])
def test_critic_warmup_clips_the_critic_gradient_alone(monkeypatch, demos, shared):
    # With a tiny max_grad_norm every step is clipped; if the actor's gradient (dropped before the
    # step) counted in the clip's norm, the critic's applied gradient would come out below it.
    settings = HybridSettings(critic_warmup_steps=10_000, mix_ratio=0.25 if demos else 0.0)
    policy_kwargs = {"net_arch": [32, 32], "share_features_extractor": shared}
    if demos:  # and an extractor with weights: shared, it learns from the value loss alone
        policy_kwargs["features_extractor_class"] = LearnedFeatures
    model = _model(settings, max_grad_norm=0.01, policy_kwargs=policy_kwargs)
    if demos:
        model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    actor = actor_parameter_names(model.policy)

    def actor_gradient_present(max_norm):
        return any(p.grad is not None for n, p in model.policy.named_parameters() if n in actor)

    actor_grad_at_clip, applied = _learn_recording_clips(model, monkeypatch, 256, actor_gradient_present)
    assert applied and actor_grad_at_clip and not any(actor_grad_at_clip)
    np.testing.assert_allclose(applied, 0.01, rtol=1e-5)  # the critic gets the whole clipped step


def _actor_drift_under_anchor(bc_loss: str, start_away_from_bc: bool) -> tuple[float, float]:
    """(mean distance of the actor's action mean from the BC policy's on the demo states, before, after)
    under the BC anchor alone: zero advantages, no value, entropy or demo-sample terms."""
    from stable_baselines3.common.callbacks import BaseCallback

    class ZeroAdvantages(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.model.rollout_buffer.advantages[:] = 0.0

    settings = HybridSettings(bc_coeff=10.0, bc_loss=bc_loss, bc_batch_size=128, mix_ratio=0.0)
    model = _model(settings, ent_coef=0.0, vf_coef=0.0, learning_rate=1e-3)
    demos = synthetic_trajectories(n=2, length=50)
    model.set_demonstrations(demos)  # freezes the current policy as the BC policy
    bc_policy = model._behaviour_policy
    if start_away_from_bc:
        with th.no_grad():
            model.policy.action_net.bias.add_(0.5)
    obs = th.as_tensor(np.concatenate([t.obs[:-1] for t in demos]))

    def distance() -> float:
        with th.no_grad():
            gap = model.policy.get_distribution(obs).mode() - bc_policy.get_distribution(obs).mode()
            return float(gap.abs().mean())

    before = distance()
    model.learn(1024, callback=ZeroAdvantages())
    return before, distance()


def test_kl_anchor_holds_the_bc_policy_where_the_nll_anchor_trains_bc_on():
    # At the BC policy itself the KL anchor has no gradient: the actor does not move.
    assert _actor_drift_under_anchor("kl", start_away_from_bc=False) == (0.0, 0.0)
    # The NLL anchor on the demos keeps fitting them (synthetic demos BC never learnt): it moves away.
    assert _actor_drift_under_anchor("nll", start_away_from_bc=False)[1] > 1e-3
    # Moved off BC, the KL anchor pulls the actor back toward it.
    before, after = _actor_drift_under_anchor("kl", start_away_from_bc=True)
    assert after < before - 0.05
