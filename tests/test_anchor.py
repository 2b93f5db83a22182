"""The return-driven BC anchor (optiq/rl/anchor.py) and HybridPPO's use of it."""

import numpy as np
import pytest
import torch as th

from optiq.config import load_env_config
from optiq.envs import make_vec
from optiq.errors import OptiqError
from optiq.rl import anchor
from optiq.rl.anchor import BC_SCALE_LIMIT, AnchorProbes, anchor_target, next_log_scale
from optiq.rl.finetune import extension_kwargs
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings
from tests.helpers import synthetic_trajectories

KWARGS = dict(n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu", policy_kwargs={"net_arch": [32, 32]})


def test_log_scale_moves_by_the_relative_shortfall_within_its_limits():
    assert next_log_scale(0.0, 1000.0, 500.0, 1.0) == pytest.approx(0.5)  # half of the reference: +0.5
    assert next_log_scale(0.0, 1000.0, 1500.0, 2.0) == pytest.approx(-1.0)  # above it: looser, at the rate
    assert next_log_scale(0.0, 1000.0, -5000.0, 1.0) == pytest.approx(1.0)  # clipped at one step per episode
    limit = np.log(BC_SCALE_LIMIT)
    assert next_log_scale(limit - 0.1, 1000.0, 0.0, 1.0) == pytest.approx(limit)
    assert next_log_scale(-limit + 0.1, 1000.0, 9000.0, 1.0) == pytest.approx(-limit)
    assert next_log_scale(0.0, -200.0, -300.0, 1.0) == pytest.approx(0.5)  # negative reference: worse is worse


def _hybrid(**settings) -> HybridPPO:
    model = HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=HybridSettings(**settings), **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    return model


def test_ppo_warmup_episodes_set_the_reference_and_the_scale_waits():
    model = _hybrid(critic_warmup_steps=100_000, bc_coeff=1.0, bc_reference_episodes=2)
    model.learn(256)  # random-weight Hopper episodes end within ~100 steps
    monitor_returns = [float(info["r"]) for info in model.ep_info_buffer]
    assert len(monitor_returns) > 2
    assert model.bc_reference_returns == pytest.approx(monitor_returns[:2])
    assert model.bc_log_scale == 0.0  # still in the warm-up
    assert model.bc_coefficient() == pytest.approx(1.0)


def test_ppo_anchor_tightens_below_the_reference_and_lets_go_above():
    model = _hybrid(critic_warmup_steps=10, bc_coeff=1.0, bc_decay=0.9, bc_reference_episodes=2)
    model.bc_reference_returns = [100.0, 100.0]
    model.num_timesteps = 20  # after the warm-up
    model.adapt_bc_scale(50.0)
    assert model.bc_coefficient() == pytest.approx(np.exp(0.5))
    model._actor_iterations = 2  # the clock decay still multiplies (1.0 here would switch it off)
    assert model.bc_coefficient() == pytest.approx(0.81 * np.exp(0.5))
    for _ in range(20):
        model.adapt_bc_scale(400.0)
    assert model.bc_coefficient() == pytest.approx(0.81 / BC_SCALE_LIMIT)


def test_anchor_target_is_a_share_of_the_reference_for_either_sign():
    assert anchor_target(1000.0, 1.0) == pytest.approx(1000.0)
    assert anchor_target(1000.0, 0.8) == pytest.approx(800.0)
    assert anchor_target(-200.0, 0.8) == pytest.approx(-240.0)  # a negative reference: the target is lower too


def test_reference_fraction_loosens_the_anchor_at_bc_level():
    """At BC's own return the anchor stays put with fraction 1, and lets go below 1; short of the
    fraction it still tightens."""
    at_one = _hybrid(critic_warmup_steps=10, bc_coeff=1.0, bc_reference_episodes=2)
    below = _hybrid(critic_warmup_steps=10, bc_coeff=1.0, bc_reference_episodes=2, bc_reference_fraction=0.8)
    for model in (at_one, below):
        model.bc_reference_returns = [100.0, 100.0]
        model.num_timesteps = 20
        model.adapt_bc_scale(100.0)
    assert at_one.bc_log_scale == 0.0
    assert below.bc_log_scale == pytest.approx(-0.2)  # (80 - 100) / 100
    below.adapt_bc_scale(40.0)
    assert below.bc_log_scale == pytest.approx(-0.2 + 0.4)


def test_fraction_steps_are_relative_to_the_reference_for_either_sign():
    # 250 below the target of a 1,000 reference at fraction 0.5 is the same step for either sign.
    assert next_log_scale(0.0, 1000.0, 250.0, 1.0, fraction=0.5) == pytest.approx(0.25)
    assert next_log_scale(0.0, -1000.0, -1750.0, 1.0, fraction=0.5) == pytest.approx(0.25)
    assert next_log_scale(0.0, 1000.0, 900.0, 1.0, fraction=0.9) == pytest.approx(0.0)


def test_fraction_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="bc_reference_fraction must be in"):
        HybridSettings(bc_reference_fraction=0.0)
    with pytest.raises(ValueError, match="bc_reference_fraction must be in"):
        HybridSettings(bc_reference_fraction=1.5)


def test_demo_sac_takes_the_reference_fraction():
    config = load_env_config("Hopper-v5", "quick", overrides={"finetune.sac.bc_rl.bc_reference_fraction": 0.7})
    assert extension_kwargs(config, "sac", "bc")["bc_reference_fraction"] == 0.7
    with pytest.raises(OptiqError, match="bc_reference_fraction"):
        too_high = load_env_config("Hopper-v5", "quick", overrides={"finetune.sac.bc_rl.bc_reference_fraction": 1.5})
        extension_kwargs(too_high, "sac", "bc")


def test_ppo_anchor_is_off_by_default_and_episodes_change_nothing():
    model = _hybrid(critic_warmup_steps=10, bc_coeff=1.0)
    model.learn(256)
    assert model.bc_reference_returns == [] and model.bc_log_scale == 0.0


def test_ppo_anchor_state_survives_a_checkpoint(tmp_path):
    model = _hybrid(critic_warmup_steps=10, bc_coeff=1.0, bc_reference_episodes=3, bc_reference_fraction=0.6)
    model.bc_reference_returns = [10.0, 20.0, 30.0]
    model.bc_log_scale = -1.5
    model.save(tmp_path / "model.zip")
    loaded = HybridPPO.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0))
    assert loaded.bc_reference_fraction == 0.6
    assert loaded.bc_reference_returns == [10.0, 20.0, 30.0]
    assert loaded.bc_log_scale == -1.5
    assert loaded.bc_coefficient() == pytest.approx(model.bc_coefficient())


def test_reference_episodes_without_a_warmup_is_a_one_line_error():
    config = load_env_config(
        "Hopper-v5",
        "quick",
        overrides={"finetune.ppo.bc_rl.bc_reference_episodes": 5, "finetune.ppo.bc_rl.critic_warmup_steps": 0},
    )
    with pytest.raises(OptiqError, match="bc_reference_episodes needs critic_warmup_steps > 0"):
        extension_kwargs(config, "ppo", "bc")


def _scripted_anchor_probes(monkeypatch, returns: list[float], steps: int = 10) -> list[tuple[int, int]]:
    """Probe returns from a script (one per episode), ``steps`` env steps a call; returns (step, episodes) a call."""
    calls: list[tuple[int, int]] = []
    script = iter(returns)

    def probe(model, policy, venv, n_episodes):
        calls.append((int(model.num_timesteps), n_episodes))
        return np.array([next(script) for _ in range(n_episodes)]), steps

    monkeypatch.setattr(anchor, "probe_returns", probe)
    return calls


def test_probes_apart_set_the_reference_and_move_the_scale_training_episodes_do_not(monkeypatch):
    model = _hybrid(critic_warmup_steps=256, bc_coeff=1.0, bc_reference_episodes=2, bc_probe_steps=256)
    calls = _scripted_anchor_probes(monkeypatch, [100.0, 100.0, 50.0, 25.0, 25.0, 25.0])
    model.learn(128 * 8, callback=AnchorProbes(make_vec("Hopper-v5", 1, seed=5)))
    assert len(model.ep_info_buffer) > 2  # training episodes ended, and moved nothing
    assert model.bc_reference_returns == [100.0, 100.0]  # the probes' two BC episodes, not Monitor's returns
    # reference at the first rollout's end; then one probe per 256 steps once the warm-up is over
    assert calls[0] == (128, 2)
    assert all(episodes == 1 for _, episodes in calls[1:]) and len(calls) >= 3
    assert all(step > 256 for step, _ in calls[1:])
    assert all(b - a >= 256 for (a, _), (b, _) in zip(calls[1:], calls[2:]))
    expected = [0.5, 0.75, 0.75, 0.75][: len(calls) - 1]
    assert model.bc_log_scale == pytest.approx(sum(expected))
    assert model.bc_anchor_probe_steps == 10 * len(calls)


def test_probe_steps_count_in_the_budget(monkeypatch):
    model = _hybrid(critic_warmup_steps=128, bc_coeff=1.0, bc_reference_episodes=2, bc_probe_steps=128)
    calls = _scripted_anchor_probes(monkeypatch, [100.0] * 20, steps=100)
    model.learn(128 * 4, callback=AnchorProbes(make_vec("Hopper-v5", 1, seed=5)))
    rollouts = model._n_updates // model.n_epochs
    assert model.num_timesteps == 128 * rollouts + 100 * len(calls)
    assert model.num_timesteps >= 128 * 4 and rollouts < 4  # the probes took budget from training


def test_the_first_probe_plays_the_bc_policy_and_later_ones_the_evaluated_policy(monkeypatch):
    model = _hybrid(
        critic_warmup_steps=128, bc_coeff=1.0, bc_reference_episodes=1, bc_probe_steps=128, policy_average_steps=256
    )
    start = th.cat([p.detach().flatten().clone() for p in model.policy.parameters()])
    probed, policies = [], []

    def probe(model_, policy, venv, n_episodes):
        probed.append(th.cat([p.detach().flatten().clone() for p in policy.parameters()]))
        policies.append(policy)
        return np.full(n_episodes, 100.0), 10

    monkeypatch.setattr(anchor, "probe_returns", probe)
    model.learn(128 * 5, callback=AnchorProbes(make_vec("Hopper-v5", 1, seed=5)))
    assert th.equal(probed[0], start) and policies[0] is model.policy
    assert not th.equal(probed[-1], start)
    assert policies[-1] is model.averaged_policy  # what is evaluated and saved, not the raw policy


def test_a_learn_without_the_probes_callback_is_refused():
    model = _hybrid(critic_warmup_steps=128, bc_coeff=1.0, bc_reference_episodes=2, bc_probe_steps=128)
    with pytest.raises(RuntimeError, match="needs the AnchorProbes callback"):
        model.learn(128)


def test_probe_state_survives_a_checkpoint(tmp_path, monkeypatch):
    model = _hybrid(critic_warmup_steps=128, bc_coeff=1.0, bc_reference_episodes=2, bc_probe_steps=128)
    _scripted_anchor_probes(monkeypatch, [100.0, 100.0] + [60.0] * 20)
    model.learn(128 * 3, callback=AnchorProbes(make_vec("Hopper-v5", 1, seed=5)))
    model.save(tmp_path / "model.zip")
    loaded = HybridPPO.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0))
    assert loaded.bc_reference_returns == [100.0, 100.0]
    assert loaded.bc_next_probe == model.bc_next_probe > 0
    assert loaded.bc_anchor_probe_steps == model.bc_anchor_probe_steps > 0
    assert loaded.bc_log_scale == model.bc_log_scale > 0


@pytest.mark.parametrize(
    "missing, message",
    [("bc_reference_episodes", "bc_probe_steps needs bc_reference_episodes > 0"), ("bc_coeff", "needs bc_coeff > 0")],
)
def test_probes_without_a_reference_or_an_anchor_is_a_one_line_error(missing, message):
    overrides = {"finetune.ppo.bc_rl.bc_probe_steps": 5000, f"finetune.ppo.bc_rl.{missing}": 0}
    config = load_env_config("Hopper-v5", "quick", overrides=overrides)
    with pytest.raises(OptiqError, match=message):
        extension_kwargs(config, "ppo", "bc")


def test_finetune_runs_the_anchor_probes_and_reports_them(tiny_config, tmp_path):
    from optiq.rl.training import read_eval_csv
    from tests.helpers import finetune_from_tiny_bc

    summary = finetune_from_tiny_bc(
        tiny_config, tmp_path, bc_coeff=1.0, bc_reference_episodes=2, bc_probe_steps=256, bc_probe_episodes=1
    )
    probes = summary["anchor_probes"]
    assert probes["reference_return"] is not None and probes["probe_steps"] > 0
    rows = read_eval_csv(tmp_path / "run" / "eval.csv")
    assert rows[0]["timesteps"] == 0
    assert rows[-1]["timesteps"] == summary["total_timesteps"] >= 768  # the final row has the probe steps in it
