"""Demo-seeded SAC: the buffer mixes the configured fraction of demos; warm-up trains critics only."""

import numpy as np
import pytest
import torch as th

from optiq.envs import make_vec
from optiq.rl.demo_sac import DemoMixReplayBuffer, DemoSAC
from tests.conftest import synthetic_trajectories

KWARGS = dict(learning_starts=0, batch_size=64, seed=0, device="cpu", policy_kwargs={"net_arch": [32, 32]})


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_buffer_samples_the_configured_fraction_of_demos(fraction):
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), demo_fraction=fraction, **KWARGS)
    demos = synthetic_trajectories(n=2, length=40)
    model.set_demonstrations(demos)
    model.learn(100)  # fills the online part
    buffer = model.replay_buffer
    assert isinstance(buffer, DemoMixReplayBuffer)
    batch = buffer.sample(256)
    demo_obs = th.as_tensor(np.concatenate([t.obs[:-1] for t in demos]))
    from_demos = sum(bool((demo_obs == row).all(dim=1).any()) for row in batch.observations)
    assert from_demos == round(256 * fraction)
    assert batch.observations.shape[0] == 256


def test_only_demos_before_any_online_data():
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    assert model.replay_buffer.sample(32).observations.shape == (32, 11)


def test_critic_warmup_keeps_the_actor():
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), critic_warmup_steps=10_000, **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    actor_before = {k: v.clone() for k, v in model.actor.state_dict().items()}
    critic_before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    log_ent_before = model.log_ent_coef.detach().clone()
    model.learn(200)
    assert all(th.equal(actor_before[k], v) for k, v in model.actor.state_dict().items())
    assert th.equal(log_ent_before, model.log_ent_coef.detach())
    assert any(not th.equal(critic_before[k], v) for k, v in model.critic.state_dict().items())


def test_demo_batches_depend_on_the_run_seed():
    def first_demo_batch(seed):
        model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), **{**KWARGS, "seed": seed})
        model.set_demonstrations(synthetic_trajectories(n=2, length=40))
        return model.replay_buffer.sample(16).observations

    assert th.equal(first_demo_batch(1), first_demo_batch(1))
    assert not th.equal(first_demo_batch(1), first_demo_batch(2))


def test_truncated_demo_episodes_are_not_done():
    from imitation.data import types

    rng = np.random.default_rng(0)
    episodes = [
        types.TrajectoryWithRew(
            obs=rng.normal(size=(6, 11)).astype(np.float32),
            acts=rng.uniform(-1, 1, size=(5, 3)).astype(np.float32),
            infos=None,
            terminal=terminal,
            rews=np.ones(5, dtype=np.float32),
        )
        for terminal in (False, True)
    ]
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), **KWARGS)
    model.set_demonstrations(episodes)
    np.testing.assert_array_equal(model.replay_buffer.demo["dones"], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1])


def test_entropy_coefficient_starts_where_configured_and_waits_for_the_warmup():
    model = DemoSAC(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), critic_warmup_steps=150, ent_coef="auto_0.01", **KWARGS
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    model.learn(100)
    assert float(th.exp(model.log_ent_coef)) == pytest.approx(0.01)
    model.learn(100, reset_num_timesteps=False)
    assert float(th.exp(model.log_ent_coef)) != pytest.approx(0.01)  # learns after the warm-up


def _filtered_bc_loss_when(prefer_demos: bool) -> float:
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), bc_coeff=100.0, **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    demo = model.replay_buffer.sample_demos(64)
    original = model.critic.forward

    def critic(obs, actions):
        # Q = 100 -+ |a - demo action|^2 on demo states: the sign decides which action the critic prefers
        distance = ((actions - demo.actions[: len(actions)]) ** 2).sum(dim=1, keepdim=True)
        q = 100.0 - distance if prefer_demos else 100.0 + distance
        return q, q

    model.critic.forward = critic
    loss = model.filtered_bc_loss(demo)
    model.critic.forward = original
    return float(loss)


def test_q_filtered_bc_switches_off_where_the_critic_prefers_the_actor():
    assert _filtered_bc_loss_when(prefer_demos=False) == 0.0
    assert _filtered_bc_loss_when(prefer_demos=True) > 0.0


def test_warmup_action_noise_widens_the_warmup_actions_only():
    env = make_vec("Hopper-v5", 1, seed=0)
    model = DemoSAC("MlpPolicy", env, critic_warmup_steps=1000, warmup_action_noise=0.3, **KWARGS)
    with th.no_grad():  # a near-deterministic actor (sigma e^-6), like a BC actor
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.fill_(-6.0)
    model._last_obs = env.reset()

    def action_spread() -> float:
        actions = []
        for step in range(200):
            model.num_timesteps = base + step
            actions.append(model._sample_action(0)[1])
        return float(np.std(np.concatenate(actions), axis=0).mean())

    base = 0  # in the warm-up
    assert action_spread() == pytest.approx(0.3, rel=0.25)
    base = 2000  # the actor is learning: SAC's own sampling only
    assert action_spread() < 0.01


def test_actor_learning_rate_ramps_up_after_the_warmup():
    model = DemoSAC(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), critic_warmup_steps=50, actor_lr_warmup_steps=100, **KWARGS
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    model.learn(100)  # 50 steps into the ramp
    assert model.actor_lr_fraction() == pytest.approx(0.5)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.5, rel=0.05)
    model.learn(100, reset_num_timesteps=False)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
