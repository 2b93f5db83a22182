"""IPMD (optiq/rl/ipmd.py): reward step signs, the policy learning from r_psi only, resume, stage-04 artefacts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from imitation.data import types
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

from optiq.demos.storage import save_demos
from optiq.envs import make_vec
from optiq.errors import OptiqError
from optiq.rl.finetune import finetune
from optiq.rl.ipmd import IPMD, _EstimatedRewards, ipmd_kwargs, load_reward_net, reward_traces, save_reward_net
from tests.helpers import synthetic_trajectories

SMALL = {"policy_kwargs": {"net_arch": [32, 32]}, "learning_starts": 0, "batch_size": 64, "device": "cpu"}


class MatchTheState(gym.Env):
    """One-step episodes: observe x in [-1, 1], act; the expert's action is x. The env's reward is always 0."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, size=1).astype(np.float32)
        return self.x, {}

    def step(self, action):
        return self.x, 0.0, True, False, {}


def _expert_demos(n: int = 400, seed: int = 0) -> list[types.Trajectory]:
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    return [types.Trajectory(obs=np.stack([x, x]), acts=x[None], infos=None, terminal=True) for x in xs]


def test_the_reward_step_raises_r_on_expert_pairs_and_lowers_it_on_the_policy_s():
    model = IPMD("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,), **SMALL)
    model.set_demonstrations(synthetic_trajectories(n=2, length=32))
    rng = np.random.default_rng(1)
    obs = th.as_tensor(rng.normal(size=(64, 11)), dtype=th.float32)
    expert = [obs, th.full((64, 3), 0.8)]  # the same states; the expert acts +0.8, the policy -0.8
    policy = [obs, th.full((64, 3), -0.8)]
    with th.no_grad():
        before = model.reward_net(*expert).mean(), model.reward_net(*policy).mean()
    for _ in range(20):
        loss = model.reward_loss(*expert, *policy)
        model.reward_optimizer.zero_grad()
        loss.backward()
        model.reward_optimizer.step()
    with th.no_grad():
        after = model.reward_net(*expert).mean(), model.reward_net(*policy).mean()
    assert after[0] > before[0] and after[1] < before[1]


def _train_reward(model: IPMD, expert: list[th.Tensor], policy: list[th.Tensor], steps: int) -> None:
    for _ in range(steps):
        loss = model.reward_loss(*expert, *policy)
        model.reward_optimizer.zero_grad()
        loss.backward()
        model.reward_optimizer.step()


def _slope_between(model: IPMD, expert: list[th.Tensor], policy: list[th.Tensor]) -> float:
    """Mean |grad r_psi| (over its inputs) at points between the expert's and the policy's pairs."""
    x_expert, x_policy = model.reward_net.inputs(*expert), model.reward_net.inputs(*policy)
    mix = th.linspace(0, 1, len(x_expert))[:, None]
    between = (mix * x_expert + (1 - mix) * x_policy).detach().requires_grad_(True)
    (grad,) = th.autograd.grad(model.reward_net.net(between).sum(), between)
    return float(grad.norm(dim=1).mean())


def test_the_gradient_penalty_keeps_the_reward_s_slope_near_one_between_expert_and_policy():
    """Without it the L2-bounded linear objective separates the two sets by as steep a step as it
    likes; with it r_psi rises at about unit slope from the policy's pairs to the expert's."""
    rng = np.random.default_rng(1)
    obs = th.as_tensor(rng.normal(size=(64, 11)), dtype=th.float32)
    expert, policy = [obs, th.full((64, 3), 0.8)], [obs, th.full((64, 3), -0.8)]
    slopes, gaps = {}, {}
    for weight in (0.0, 10.0):
        model = IPMD(
            "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(64, 64),
            reward_l2=0.01, reward_grad_penalty=weight, **SMALL,
        )  # fmt: skip
        model.set_demonstrations(synthetic_trajectories(n=2, length=32))
        _train_reward(model, expert, policy, 300)
        slopes[weight] = _slope_between(model, expert, policy)
        with th.no_grad():
            gaps[weight] = float(model.reward_net(*expert).mean() - model.reward_net(*policy).mean())
    assert 0.7 < slopes[10.0] < 1.3
    assert slopes[0.0] > 2 * slopes[10.0]
    assert gaps[10.0] > 0.5  # still ranks the expert's pairs above the policy's


def test_the_gradient_penalty_off_draws_nothing_from_torch_s_rng():
    model = IPMD("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,), **SMALL)
    model.set_demonstrations(synthetic_trajectories(n=2, length=32))
    batch = [th.zeros(8, 11), th.zeros(8, 3), th.ones(8, 11), th.ones(8, 3)]
    state = th.random.get_rng_state()
    model.reward_loss(*batch)
    assert th.equal(state, th.random.get_rng_state())  # runs without it stay bit for bit as before


def test_the_policy_learns_from_the_estimated_reward_where_the_env_s_is_constant():
    """The env pays 0 always, so only r_psi can teach the policy to copy the expert (a = x)."""
    venv = make_vec_env(MatchTheState, n_envs=1, seed=0)
    model = IPMD("MlpPolicy", venv, seed=0, reward_hid_sizes=(32, 32), ent_coef="auto_0.05", **SMALL)
    model.set_demonstrations(_expert_demos())
    xs = np.linspace(-0.9, 0.9, 19, dtype=np.float32)[:, None]
    error_before = float(np.abs(model.predict(xs, deterministic=True)[0] - xs).mean())
    model.learn(2500)
    assert float(np.abs(model.replay_buffer.rewards[: model.replay_buffer.size()]).max()) == 0.0
    error_after = float(np.abs(model.predict(xs, deterministic=True)[0] - xs).mean())
    assert error_after < 0.25 < error_before


def test_rho_averages_the_entropy_regularised_reward_the_target_adds():
    """With no discount, rho must be the mean of r_psi - alpha log pi(a'|s'), what SAC's soft target
    adds per step; a rho of r_psi alone leaves a drift of alpha x entropy in every differential Q."""
    venv = make_vec("Hopper-v5", 1, seed=0)
    model = IPMD("MlpPolicy", venv, seed=0, reward_hid_sizes=(16,), ent_coef=0.5, average_reward_rate=1.0, **SMALL)
    model.set_demonstrations(synthetic_trajectories(n=2, length=64))
    model.learn(100)  # fills the buffer; the actor keeps a wide, untrained distribution
    with th.no_grad():  # r_psi = 1 everywhere
        model.reward_net.net[-1].weight.zero_()
        model.reward_net.net[-1].bias.fill_(1.0)
    batch = model.replay_buffer.sample(64)
    with th.no_grad():  # E[(1 - done) log pi(a'|s')] by Monte Carlo over the batch's next states
        samples = [model.actor.action_log_prob(batch.next_observations)[1] for _ in range(200)]
        log_prob = float((th.stack(samples).mean(0).reshape(-1, 1) * (1 - batch.dones)).mean())
    assert abs(log_prob) > 0.5  # the entropy term is not negligible here
    assert float(model.soft_rewards(th.ones(64, 1), batch).mean()) == pytest.approx(1.0 - 0.5 * log_prob, abs=0.1)
    # What SAC's train() samples: rho (rate 1: this batch's soft reward) includes the entropy term,
    # and the differential rewards are r_psi - rho.
    sampled = _EstimatedRewards(model).sample(64)
    assert model.average_reward == pytest.approx(1.0 - 0.5 * log_prob, abs=0.3)
    assert th.allclose(sampled.rewards, th.full_like(sampled.rewards, 1.0 - model.average_reward))


def test_a_saved_run_resumes_with_its_reward_net_optimiser_and_rho(tmp_path):
    model = IPMD("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,), **SMALL)
    model.set_demonstrations(synthetic_trajectories(n=2, length=64))
    model.learn(200)
    assert model.average_reward != 0.0
    model.save(tmp_path / "ipmd.zip")
    loaded = IPMD.load(tmp_path / "ipmd.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    for key, value in model.reward_net.state_dict().items():
        assert th.equal(value, loaded.reward_net.state_dict()[key]), key
    assert loaded.reward_optimizer.state_dict()["state"]  # Adam's moments came back, not a fresh optimiser
    assert loaded.average_reward == model.average_reward and loaded.criterion == "average"
    with pytest.raises(RuntimeError, match="set_demonstrations"):
        loaded.learn(10)  # the demos are not in the file: attached again on resume


def test_stage_04_ipmd_writes_a_stock_sac_and_the_reward_net(tiny_config, tmp_path):
    save_demos(tmp_path / "demos.npz", synthetic_trajectories(n=3, length=60))
    with pytest.raises(OptiqError, match="--init ipmd trains a SAC policy; PPO is not supported"):
        finetune(tiny_config, tmp_path / "ppo", "ppo", "ipmd", 0, demos_path=tmp_path / "demos.npz", device="cpu")
    tiny_config["imitation"]["ipmd"] = {"expert_batch_size": 32, "reward_hid_sizes": [16]}
    summary = finetune(
        tiny_config,
        tmp_path / "run",
        "sac",
        "ipmd",
        0,
        demos_path=tmp_path / "demos.npz",
        device="cpu",
        progress_bar=False,
    )
    assert summary["init"] == "ipmd" and summary["extensions"]["expert_batch_size"] == 32
    assert summary["policy"]["raw_obs"] is True
    stock = SAC.load(tmp_path / "run" / "final_model.zip", device="cpu")
    assert type(stock) is SAC
    net = load_reward_net(tmp_path / "run" / "reward_net.pt")
    rewards = net(th.zeros(5, 11), th.zeros(5, 3))
    assert rewards.shape == (5, 1)
    traces = reward_traces(tmp_path / "run" / "reward_net.pt", tmp_path / "demos.npz", "Hopper-v5", seed=0)
    assert len(traces["expert"]["learned"]) == len(traces["expert"]["true"]) == 60  # the first demo episode
    assert len(traces["random"]["learned"]) == len(traces["random"]["true"]) >= 1


def test_the_gradient_penalty_is_a_validated_setting():
    from optiq.config import load_env_config
    from optiq.rl.ipmd import ipmd_kwargs

    config = load_env_config("Hopper-v5", "quick", overrides={"imitation.ipmd.reward_grad_penalty": 10})
    assert ipmd_kwargs(config)["reward_grad_penalty"] == 10
    with pytest.raises(OptiqError, match="reward_grad_penalty"):
        ipmd_kwargs(load_env_config("Hopper-v5", "quick", overrides={"imitation.ipmd.reward_grad_penalty": -1}))


def _absorbing_model(**kwargs) -> IPMD:
    model = IPMD(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,),
        criterion="discounted", absorbing_states=True, **kwargs, **SMALL,
    )  # fmt: skip
    model.set_demonstrations(synthetic_trajectories(n=2, length=32))
    return model


def test_absorbing_states_lower_the_absorbing_reward_when_the_policy_s_episodes_end():
    """The policy's terminal transitions bring absorbing samples to its side of the reward step;
    the expert's demos bring none, so r_psi(absorbing) falls, and only through them."""
    rng = np.random.default_rng(1)
    obs = th.as_tensor(rng.normal(size=(64, 11)), dtype=th.float32)
    expert, policy = [obs, th.full((64, 3), 0.8)], [obs, th.full((64, 3), -0.8)]
    absorbing = {}
    for n_done in (0, 16):
        model = _absorbing_model()
        dones = th.zeros(64, 1)
        dones[:n_done] = 1.0
        with th.no_grad():
            start = float(model.reward_net.absorbing_reward())
        for _ in range(300):
            loss = model.reward_loss(*expert, *policy, dones)
            model.reward_optimizer.zero_grad()
            loss.backward()
            model.reward_optimizer.step()
        with th.no_grad():
            absorbing[n_done] = float(model.reward_net.absorbing_reward()) - start
    assert absorbing[16] < -0.1
    assert absorbing[16] < absorbing[0] - 0.1


def test_a_terminal_transition_s_target_adds_the_absorbing_state_s_discounted_value():
    model = _absorbing_model(gamma=0.9)
    model.learn(300)  # Hopper's random early policy falls: the buffer holds terminal transitions
    with th.no_grad():  # r_psi = 0.5 on real pairs; the absorbing state's is set to -2 below
        model.reward_net.net[-1].weight.zero_()
        model.reward_net.net[-1].bias.fill_(0.5)
    model.reward_net.absorbing_reward = lambda: th.tensor([[-2.0]])  # type: ignore[method-assign]
    np.random.seed(0)  # SB3's buffer draws its indices from numpy's global RNG
    batch = model.replay_buffer.sample(256)
    assert 0 < float(batch.dones.sum()) < 256
    np.random.seed(0)
    sampled = _EstimatedRewards(model).sample(256)
    assert th.equal(sampled.dones, batch.dones)
    assert th.allclose(sampled.rewards, 0.5 + batch.dones * 0.9 / (1 - 0.9) * -2.0)


def test_absorbing_states_need_the_discounted_criterion_and_come_back_with_the_reward_net(tmp_path):
    from optiq.config import load_env_config

    with pytest.raises(OptiqError, match="absorbing_states needs criterion: discounted"):
        ipmd_kwargs(load_env_config("Hopper-v5", "quick", overrides={"imitation.ipmd.absorbing_states": True}))
    model = _absorbing_model()
    save_reward_net(model, tmp_path / "reward_net.pt")
    net = load_reward_net(tmp_path / "reward_net.pt")
    assert net.absorbing
    with th.no_grad():
        assert th.equal(net.absorbing_reward(), model.reward_net.absorbing_reward())
        assert th.equal(net(th.zeros(4, 11), th.zeros(4, 3)), model.reward_net(th.zeros(4, 11), th.zeros(4, 3)))


def test_the_gradient_penalty_pairs_the_expert_s_with_the_policy_s_real_pairs_only():
    """The absorbing rows join the policy's mean, not the penalty's interpolations."""
    model = _absorbing_model(reward_grad_penalty=10.0)
    rng = np.random.default_rng(2)
    batch = [th.as_tensor(rng.normal(size=(32, 11)), dtype=th.float32), th.zeros(32, 3)] * 2
    dones = th.zeros(32, 1)
    dones[:8] = 1.0
    th.manual_seed(0)
    with_absorbing = float(model.reward_loss(*batch, dones))
    th.manual_seed(0)
    without = float(model.reward_loss(*batch))
    net, l2 = model.reward_net, model.reward_l2
    with th.no_grad():
        expert = float(net(*batch[:2]).mean())
        real = net(*batch[2:])
        rows = float(th.cat([real, net.absorbing_reward().expand(8, 1)]).mean())
        real = float(real.mean())
    expected = (rows - expert + l2 * (rows**2 + expert**2)) - (real - expert + l2 * (real**2 + expert**2))
    assert with_absorbing - without == pytest.approx(expected, abs=1e-5)


def _reward_steps(model: IPMD) -> int:
    return int(model.reward_optimizer.state_dict()["state"][0]["step"])


def test_the_reward_is_updated_once_per_interval_of_sac_gradient_steps(tmp_path):
    """reward_update_interval k: one reward step per k SAC gradient steps (a slow reward, as ML-IRL's),
    also when one train() call crosses an interval and after a resume from mid-interval."""
    settings = {**SMALL, "train_freq": 3, "gradient_steps": 3}
    venv = make_vec("Hopper-v5", 1, seed=0)
    model = IPMD("MlpPolicy", venv, seed=0, reward_hid_sizes=(16,), reward_update_interval=7, **settings)
    model.set_demonstrations(synthetic_trajectories(n=2, length=64))
    model.learn(150)
    assert model._n_updates == 150 and _reward_steps(model) == 150 // 7
    model.save(tmp_path / "ipmd.zip")  # 150 is mid-interval: 3 steps past the 21st reward step
    loaded = IPMD.load(tmp_path / "ipmd.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    loaded.set_demonstrations(synthetic_trajectories(n=2, length=64))
    loaded.learn(60, reset_num_timesteps=False)
    assert loaded._n_updates == 210 and _reward_steps(loaded) == 210 // 7


def test_the_policy_sample_window_draws_only_the_newest_transitions():
    model = IPMD(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,), policy_sample_window=10, **SMALL
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=64))
    model.learn(150)
    buffer = model.replay_buffer
    newest = buffer.observations[buffer.pos - 10 : buffer.pos, 0]
    drawn = model._policy_samples(500).observations.numpy()
    assert all(np.isclose(newest, row).all(axis=1).any() for row in drawn)
    assert len({row.tobytes() for row in drawn}) == 10  # every one of the window's transitions, none older
    whole = IPMD("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,), **SMALL)
    whole.replay_buffer = buffer
    assert len({row.tobytes() for row in whole._policy_samples(500).observations.numpy()}) > 10


def test_the_policy_sample_window_follows_a_buffer_that_has_wrapped():
    model = IPMD(
        "MlpPolicy",
        make_vec("Hopper-v5", 1, seed=0),
        seed=0,
        reward_hid_sizes=(16,),
        policy_sample_window=10,
        buffer_size=50,
        **SMALL,
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=64))
    model.learn(153)
    buffer = model.replay_buffer
    assert buffer.full and buffer.pos == 3
    newest = np.take(buffer.observations[:, 0], buffer.pos - np.arange(1, 11), axis=0, mode="wrap")
    drawn = model._policy_samples(500).observations.numpy()
    assert {row.tobytes() for row in drawn} == {row.tobytes() for row in newest}


def test_the_slow_reward_settings_are_validated():
    with pytest.raises(OptiqError, match="reward_update_interval"):
        ipmd_kwargs({"imitation": {"ipmd": {"reward_update_interval": 0}}})
    with pytest.raises(OptiqError, match="policy_sample_window"):
        ipmd_kwargs({"imitation": {"ipmd": {"policy_sample_window": -1}}})
    assert ipmd_kwargs({})["reward_update_interval"] == 1 and ipmd_kwargs({})["policy_sample_window"] == 0


def test_the_rms_penalty_lowers_the_flat_optimum_of_separable_sets_and_from_one_removes_it():
    """reward_l2 bounds only the two means, so separable sets end at +-1 / (2 reward_l2) = +-5; the
    per-pair RMS term w moves that optimum to +-(1 - w) / (2 reward_l2), and from w = 1 to r = 0."""
    rng = np.random.default_rng(1)
    obs = th.as_tensor(rng.normal(size=(64, 11)), dtype=th.float32)
    expert, policy = [obs, th.full((64, 3), 0.8)], [obs, th.full((64, 3), -0.8)]
    gaps, largest = {}, {}
    for weight in (0.0, 0.5, 1.2):
        model = IPMD(
            "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(64, 64),
            reward_learning_rate=1e-3, reward_rms_penalty=weight, **SMALL,
        )  # fmt: skip
        model.set_demonstrations(synthetic_trajectories(n=2, length=32))
        _train_reward(model, expert, policy, 400)
        with th.no_grad():
            r_expert, r_policy = model.reward_net(*expert), model.reward_net(*policy)
        gaps[weight] = float(r_expert.mean() - r_policy.mean())
        largest[weight] = float(th.cat([r_expert, r_policy]).abs().max())
    assert gaps[0.0] == pytest.approx(10.0, abs=0.2)
    assert gaps[0.5] == pytest.approx(5.0, abs=0.2)
    assert largest[1.2] < 0.2


def test_current_policy_actions_pair_the_buffer_s_states_with_what_the_actor_samples_now():
    """policy_actions: current lowers r_psi at (s, a ~ pi(.|s)) for replay states s, not at the stored
    actions; its draw leaves torch's RNG where it was, so SAC's own sampling is unchanged."""
    model = IPMD(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, reward_hid_sizes=(16,), policy_actions="current", **SMALL
    )
    model.set_demonstrations(synthetic_trajectories(n=2, length=64))
    model.learn(100)
    seen: dict[str, th.Tensor] = {}
    original = model.reward_loss

    def capture(expert_obs, expert_acts, policy_obs, policy_acts, policy_dones=None):
        seen["obs"], seen["acts"] = policy_obs, policy_acts
        return original(expert_obs, expert_acts, policy_obs, policy_acts, policy_dones)

    model.reward_loss = capture  # type: ignore[method-assign]
    state = th.random.get_rng_state()
    np.random.seed(3)
    model._reward_step()
    assert th.equal(state, th.random.get_rng_state())
    np.random.seed(3)
    np.random.randint(0, len(model.expert_obs), size=model.expert_batch_size)  # the expert's draw comes first
    stored = model._policy_samples(model.expert_batch_size)
    assert th.equal(seen["obs"], stored.observations)  # the same replay states ...
    assert not th.allclose(seen["acts"], stored.actions)  # ... with other actions than those stored
    model._current_action_draws -= 1  # the same draw again: its generator state is seeded, not shared
    assert th.equal(model.current_actions(stored.observations), seen["acts"])
    model.actor.mu.bias.data += 5.0  # the actions are the actor's: move its mean and they follow
    model._current_action_draws -= 1
    assert (model.current_actions(stored.observations) > seen["acts"]).float().mean() > 0.9


def test_the_authors_reward_settings_are_validated():
    with pytest.raises(OptiqError, match="policy_actions"):
        ipmd_kwargs({"imitation": {"ipmd": {"policy_actions": "newest"}}})
    with pytest.raises(OptiqError, match="reward_rms_penalty"):
        ipmd_kwargs({"imitation": {"ipmd": {"reward_rms_penalty": -1}}})
    defaults = ipmd_kwargs({})
    assert defaults["policy_actions"] == "stored" and defaults["reward_rms_penalty"] == 0.0
