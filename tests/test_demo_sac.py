"""Demo-seeded SAC: the buffer mixes the configured fraction of demos; warm-up trains critics only."""

from collections import deque

import numpy as np
import pytest
import torch as th

from optiq.envs import make_vec
from optiq.rl.demo_sac import DemoMixReplayBuffer, DemoSAC
from tests.helpers import synthetic_trajectories

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


def _model_with_bc_proposer(**kwargs):
    """A DemoSAC whose frozen BC proposer and learning actor differ (the actor moved after the copy)."""
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), bc_proposals=True, **{**KWARGS, **kwargs})
    model.freeze_bc_proposer()
    with th.no_grad():
        model.actor.mu.bias.add_(0.5)
    return model


def _critic_preferring(model, preferred: str):
    """A critic whose Q is highest at the BC proposer's deterministic action (or farthest from it)."""

    def critic(obs, actions):
        distance = ((actions - model.bc_proposer(obs, deterministic=True)) ** 2).sum(dim=1, keepdim=True)
        q = -distance if preferred == "bc" else distance
        return q, q

    return critic


@pytest.mark.parametrize("preferred", ["bc", "actor"])
def test_bc_proposals_choose_the_action_the_critic_rates_higher(preferred):
    model = _model_with_bc_proposer()
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(32, 11)), dtype=th.float32)
    model.critic.forward = _critic_preferring(model, preferred)
    actor_actions = model.actor(obs, deterministic=True).detach()
    bc_actions = model.bc_proposer(obs, deterministic=True)
    assert not th.allclose(actor_actions, bc_actions)
    chosen, take_bc = model.choose_with_critic(obs, actor_actions, model.critic)
    assert bool(take_bc.all()) == (preferred == "bc")
    assert th.equal(chosen, bc_actions if preferred == "bc" else actor_actions)


def test_td_targets_bootstrap_from_the_chosen_proposal():
    model = _model_with_bc_proposer()
    model.critic_target.forward = _critic_preferring(model, "bc")
    obs = th.as_tensor(np.random.default_rng(1).normal(size=(16, 11)), dtype=th.float32)
    with model._bc_proposals_in_targets():
        with th.no_grad():  # SAC's target computation
            next_actions, _ = model.actor.action_log_prob(obs)
        actor_sample, _ = model.actor.action_log_prob(obs)  # SAC's actor loss (with gradients)
    assert th.equal(next_actions, model.bc_proposer(obs, deterministic=True))
    assert actor_sample.requires_grad and not th.allclose(actor_sample.detach(), next_actions)
    assert "action_log_prob" not in vars(model.actor)  # the class's method is back


def test_rollouts_after_the_warmup_act_with_the_chosen_proposal():
    model = _model_with_bc_proposer(critic_warmup_steps=100)
    model._last_obs = model.get_env().reset()
    model.critic.forward = _critic_preferring(model, "bc")
    bc_action = model.bc_proposer(th.as_tensor(model._last_obs, dtype=th.float32), deterministic=True).numpy()
    model.num_timesteps = 50  # warm-up: the actor (BC itself in a real run) acts
    assert not np.allclose(model._sample_action(0)[1], bc_action)
    model.num_timesteps = 150
    np.testing.assert_allclose(model._sample_action(0)[1], bc_action, atol=1e-6)
    model.critic.forward = _critic_preferring(model, "actor")
    assert not np.allclose(model._sample_action(0)[1], bc_action)


def test_bc_proposer_survives_a_checkpoint_and_stays_out_of_the_stock_export(tmp_path):
    from stable_baselines3 import SAC

    from optiq.rl.export import save_stock_model

    model = _model_with_bc_proposer(critic_warmup_steps=20)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    model.learn(60)  # past the warm-up: proposals in rollouts and targets
    proposer = {k: v.clone() for k, v in model.bc_proposer.state_dict().items()}
    assert any(not th.equal(proposer[k], v) for k, v in model.actor.state_dict().items())
    model.save(tmp_path / "checkpoint.zip")
    resumed = DemoSAC.load(tmp_path / "checkpoint.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    assert all(th.equal(proposer[k], v) for k, v in resumed.bc_proposer.state_dict().items())
    save_stock_model(model, tmp_path / "final.zip")
    stock = SAC.load(tmp_path / "final.zip", device="cpu")
    assert all(th.equal(v, stock.actor.state_dict()[k]) for k, v in model.actor.state_dict().items())


def test_finetune_fills_the_proposer_with_the_bc_actor(tiny_config, tmp_path):
    """Through stage 04's real start: the frozen proposer holds BC's actor, not a random one."""
    from optiq.bc.train import list_bc_checkpoints, train_bc
    from optiq.demos.storage import save_demos
    from optiq.policies import PolicyFiles, load_model
    from optiq.rl.finetune import finetune

    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(tiny_config, tmp_path / "demos", tmp_path / "bc", seed=0, algo="sac", device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    tiny_config["finetune"]["sac"]["bc_rl"].update(bc_proposals=True, critic_warmup_steps=100)
    finetune(
        tiny_config,
        tmp_path / "run",
        "sac",
        "bc",
        0,
        bc_files,
        300,
        device="cpu",
        progress_bar=False,
        demos_path=tmp_path / "demos" / "demos.npz",
    )
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("*.zip"))[-1]
    model = DemoSAC.load(checkpoint, device="cpu")
    bc_actor = load_model(bc_files, "cpu").actor.state_dict()
    assert all(th.equal(bc_actor[k], v) for k, v in model.bc_proposer.state_dict().items())
    assert any(not th.equal(bc_actor[k], v) for k, v in model.actor.state_dict().items())  # the actor learned


def test_reference_episodes_run_without_warmup_noise_and_set_the_reference():
    env = make_vec("Hopper-v5", 1, seed=0)
    model = DemoSAC(
        "MlpPolicy", env, critic_warmup_steps=100_000, warmup_action_noise=0.3, bc_reference_episodes=2, **KWARGS
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    with th.no_grad():  # a near-deterministic actor, like a BC actor
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.fill_(-6.0)
    model.learn(400)  # random-weight Hopper episodes end within ~100 steps
    monitor_returns = [float(info["r"]) for info in model.ep_info_buffer]
    assert len(monitor_returns) > 2
    assert model.bc_reference_returns == pytest.approx(monitor_returns[:2])
    assert model.bc_reference_return() == pytest.approx(np.mean(monitor_returns[:2]))
    assert model.bc_log_scale == 0.0  # still in the warm-up: the anchor waits
    # The noise-free episodes act with the actor's mean; once they are done the warm-up noise is on.
    model._last_obs = env.reset()

    def warmup_actions() -> np.ndarray:
        actions = []
        for step in range(50):
            model.num_timesteps = 1000 + step  # the warm-up noise is drawn per step
            actions.append(model._sample_action(0)[1])
        return np.concatenate(actions)

    model.bc_reference_returns = []
    quiet = warmup_actions()
    model.bc_reference_returns = [1.0, 1.0]
    noisy = warmup_actions()
    assert quiet.std(axis=0).mean() < 0.01 < noisy.std(axis=0).mean()


def _anchored_sac(**extra) -> DemoSAC:
    """A DemoSAC past its warm-up whose BC reference return is 1,000."""
    model = DemoSAC(
        "MlpPolicy",
        make_vec("Hopper-v5", 1, seed=0),
        critic_warmup_steps=10,
        bc_coeff=0.4,
        bc_reference_episodes=2,
        **extra,
        **KWARGS,
    )
    model.bc_reference_returns = [1000.0, 1000.0]
    model.num_timesteps = 20
    return model


def test_anchor_tightens_when_returns_fall_below_the_reference_and_lets_go_above():
    model = _anchored_sac(bc_adapt_rate=1.0)
    model.adapt_bc_scale(500.0)  # half of BC's return: the anchor doubles-and-more (e^0.5)
    assert model.bc_coefficient() == pytest.approx(0.4 * np.exp(0.5))
    for _ in range(20):
        model.adapt_bc_scale(0.0)
    assert model.bc_coefficient() == pytest.approx(0.4 * 100)  # capped
    for _ in range(20):
        model.adapt_bc_scale(3000.0)  # far above BC: shortfall clipped at -1 per episode
    assert model.bc_coefficient() == pytest.approx(0.4 / 100)
    before = model.bc_log_scale
    model.num_timesteps = 5  # back in the warm-up (e.g. a resumed run's first episodes): no change
    model.adapt_bc_scale(0.0)
    assert model.bc_log_scale == before


def test_anchor_state_survives_a_checkpoint(tmp_path):
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), bc_reference_episodes=3, **KWARGS)
    model.bc_reference_returns = [10.0, 20.0, 30.0]
    model.bc_log_scale = 1.25
    model.save(tmp_path / "model.zip")
    loaded = DemoSAC.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0))
    assert loaded.bc_reference_returns == [10.0, 20.0, 30.0]
    assert loaded.bc_log_scale == 1.25
    assert loaded.bc_coefficient() == pytest.approx(model.bc_coefficient())


def _probing_model(**extra):
    model = DemoSAC(
        "MlpPolicy",
        make_vec("Hopper-v5", 1, seed=0),
        critic_warmup_steps=10,
        bc_coeff=0.4,
        bc_reference_episodes=2,
        bc_probe_every=3,
        **KWARGS,
        **extra,
    )
    model.ep_info_buffer, model.ep_success_buffer = deque(maxlen=100), deque(maxlen=100)
    return model


def test_only_mean_action_probes_move_the_anchor():
    model = _probing_model()
    model.bc_reference_returns = [1000.0, 1000.0]
    model.num_timesteps = 20  # after the warm-up
    finished = [{"episode": {"r": 0.0, "l": 10, "t": 0.0}}]  # far below BC: a probe would tighten
    scales, probes = [], []
    for _ in range(7):
        probes.append(bool(model.acts_by_mean(1)[0]))
        model._update_info_buffer(finished)
        scales.append(model.bc_log_scale)
    # Episodes 1-3 act sampled; the 3rd's end makes the 4th a probe, the 6th's the 7th.
    assert probes == [False, False, False, True, False, False, True]
    assert scales[:3] == [0.0, 0.0, 0.0] and scales[3] == pytest.approx(1.0) and scales[4:6] == [scales[3]] * 2
    assert scales[6] == pytest.approx(2.0)


def test_probe_and_reference_episodes_act_by_the_mean_action():
    model = _probing_model()
    with th.no_grad():  # sigma 1: a sampled action is far from the mean
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.zero_()
    model._last_obs = model.env.reset()
    mean = model.policy.scale_action(model.predict(model._last_obs, deterministic=True)[0])
    model.num_timesteps = 20
    assert np.abs(model._sample_action(0)[1] - mean).max() > 0.05  # a sampled episode
    model.bc_probe_envs = np.array([True])
    assert np.allclose(model._sample_action(0)[1], mean)  # a probe
    model.bc_probe_envs, model.num_timesteps = np.array([False]), 5
    assert np.allclose(model._sample_action(0)[1], mean)  # a reference episode in the warm-up


def test_probes_run_in_training_and_survive_a_checkpoint(tmp_path):
    env = make_vec("Hopper-v5", 1, seed=0)
    model = DemoSAC(
        "MlpPolicy", env, critic_warmup_steps=100, bc_coeff=0.4, bc_reference_episodes=2, bc_probe_every=2, **KWARGS
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    model.learn(600)  # random-weight Hopper episodes end within ~100 steps
    assert len(model.bc_reference_returns) == 2 and model.bc_episodes_after_warmup >= 2
    model.save(tmp_path / "model.zip")
    loaded = DemoSAC.load(tmp_path / "model.zip", env=env)
    assert loaded.bc_probe_every == 2 and loaded.bc_episodes_after_warmup == model.bc_episodes_after_warmup
    assert np.array_equal(loaded.bc_probe_envs, model.bc_probe_envs)


def test_reference_fraction_moves_the_scale_and_survives_a_checkpoint(tmp_path):
    model = _anchored_sac(bc_reference_fraction=0.7)
    model.adapt_bc_scale(1000.0)  # at BC's return: 300 above the target, the anchor loosens
    assert model.bc_log_scale == pytest.approx(-0.3)
    model.save(tmp_path / "model.zip")
    loaded = DemoSAC.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    assert loaded.bc_reference_fraction == 0.7
    assert loaded.bc_log_scale == pytest.approx(-0.3)
    with pytest.raises(ValueError, match="bc_reference_fraction must be in"):
        DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), bc_reference_fraction=0.0, **KWARGS)
