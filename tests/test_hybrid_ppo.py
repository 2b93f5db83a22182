"""HybridPPO: critic warm-up, BC term, V-trace caps, and equality with stock PPO when off."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from optiq.envs import make_vec
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings, actor_parameter_names
from optiq.rl.vtrace import vtrace
from tests.helpers import synthetic_trajectories

KWARGS = dict(n_steps=128, batch_size=64, n_epochs=2, seed=3, device="cpu", policy_kwargs={"net_arch": [32, 32]})


def _state(model):
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


def test_with_extensions_off_it_is_stock_ppo():
    # Built and trained one after the other: each construction re-seeds torch with seed=3.
    stock = PPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=3), **KWARGS)
    initial = _state(stock)
    stock.learn(256)
    hybrid = HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=3), hybrid=HybridSettings(), **KWARGS)
    assert all(th.equal(initial[k], v) for k, v in _state(hybrid).items())
    hybrid.learn(256)
    a, b = _state(stock), _state(hybrid)
    assert any(not th.equal(initial[k], a[k]) for k in a)  # the update did something
    assert all(th.equal(a[k], b[k]) for k in a), [k for k in a if not th.equal(a[k], b[k])]


def test_critic_warmup_changes_only_the_critic():
    model = HybridPPO(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=HybridSettings(critic_warmup_steps=10_000), **KWARGS
    )
    before = _state(model)
    model.learn(256)
    after = _state(model)
    actor = actor_parameter_names(model.policy)
    assert actor and all(th.equal(before[k], after[k]) for k in actor)
    critic = [k for k in after if k not in actor and k.startswith(("mlp_extractor.value_net", "value_net"))]
    assert critic and any(not th.equal(before[k], after[k]) for k in critic)


class ZeroAdvantages(BaseCallback):
    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.model.rollout_buffer.advantages[:] = 0.0


def _demo_nll_and_mse(model, demos):
    obs = np.concatenate([t.obs[:-1] for t in demos])
    acts = np.concatenate([t.acts for t in demos])
    with th.no_grad():
        dist = model.policy.get_distribution(th.as_tensor(obs))
        nll = -dist.log_prob(th.as_tensor(acts)).mean().item()
        mse = ((dist.mode() - th.as_tensor(acts)) ** 2).mean().item()
    return nll, mse


@pytest.mark.parametrize("bc_coeff", [1.0, 0.0])
def test_bc_term_pulls_the_policy_toward_demo_actions(bc_coeff):
    demos = synthetic_trajectories(n=3, length=50)
    settings = HybridSettings(bc_coeff=bc_coeff, bc_batch_size=128)
    model = HybridPPO(
        "MlpPolicy",
        make_vec("Hopper-v5", 1, seed=0),
        hybrid=settings,
        ent_coef=0.0,
        vf_coef=0.0,
        learning_rate=1e-3,
        **KWARGS,
    )
    model.set_demonstrations(demos)
    before = _demo_nll_and_mse(model, demos)
    model.learn(256, callback=ZeroAdvantages())
    after = _demo_nll_and_mse(model, demos)
    if bc_coeff > 0:
        assert after[0] < before[0] - 0.01 and after[1] < before[1]
    else:  # zero advantages, no value or entropy loss, no BC term: nothing moves the actor
        assert after == pytest.approx(before)


def test_bc_coefficient_decays_geometrically():
    model = HybridPPO(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=HybridSettings(bc_coeff=0.5, bc_decay=0.9), **KWARGS
    )
    model._actor_iterations = 3
    assert model.bc_coefficient() == pytest.approx(0.5 * 0.9**3)


def test_vtrace_weights_are_capped_at_rho_bar_and_c_bar():
    log_rhos = np.log([0.5, 2.0, 4.0])
    result = vtrace(
        log_rhos, rewards=np.ones(3), values=np.zeros(3), bootstrap_value=0.0, gamma=1.0, rho_bar=1.0, c_bar=0.95
    )
    np.testing.assert_allclose(result.rhos, [0.5, 1.0, 1.0])
    np.testing.assert_allclose(result.cs, [0.5, 0.95, 0.95])
    # deltas = rhos * r = [0.5, 1, 1]; vs_2 = 1; vs_1 = 1 + 0.95 * 1 = 1.95; vs_0 = 0.5 + 0.5 * 1.95 = 1.475
    np.testing.assert_allclose(result.vs, [1.475, 1.95, 1.0])
    np.testing.assert_allclose(result.pg_advantages, [0.5 * (1 + 1.95), 1.0 * (1 + 1.0), 1.0])


def test_vtrace_on_policy_reduces_to_n_step_returns():
    rewards, values = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5])
    result = vtrace(np.zeros(3), rewards, values, bootstrap_value=4.0, gamma=0.9)
    expected = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4]
    np.testing.assert_allclose(result.vs, expected)


def test_demo_samples_with_vtrace_train_and_save(tmp_path):
    demos = synthetic_trajectories(n=3, length=50)
    settings = HybridSettings(mix_ratio=0.5, bc_coeff=0.1, rho_bar=1.0, c_bar=0.95, critic_warmup_steps=128)
    model = HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=settings, **KWARGS)
    model.set_demonstrations(demos)
    model.learn(512)
    path = tmp_path / "hybrid.zip"
    model.save(path)
    loaded = HybridPPO.load(path, env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    assert loaded.hybrid == settings and loaded._demo is None
    obs = np.zeros((2, 11), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def test_bc_term_only_with_critic_warmup_runs():
    """No demo samples and the BC term off during warm-up: nothing to add, no crash."""
    settings = HybridSettings(bc_coeff=1.0, mix_ratio=0.0, critic_warmup_steps=128)
    model = HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=settings, **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=50))
    model.learn(384)
    assert model._actor_iterations >= 1


def test_gsde_policy_takes_demonstrations_and_trains():
    """gSDE's log_std is a matrix that SB3's PPO passes outside policy_kwargs; the BC behaviour copy must match it."""
    settings = HybridSettings(mix_ratio=0.5, bc_coeff=0.1, critic_warmup_steps=128)
    model = HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=settings, use_sde=True, **KWARGS)
    demos = synthetic_trajectories(n=3, length=50)
    model.set_demonstrations(demos)
    assert model._behaviour_policy.log_std.shape == model.policy.log_std.shape == (32, 3)
    obs, acts = model._demo["obs"][:8], model._demo["acts"][:8]
    with th.no_grad():
        expected = model._log_prob(model.policy, model._normalize_obs(obs), acts)
    np.testing.assert_allclose(model._demo["mu_log_prob"][:8], expected, rtol=1e-6)
    before = _state(model)
    model.learn(512)
    assert model._actor_iterations >= 1
    assert not th.equal(before["log_std"], model.policy.log_std.detach())
