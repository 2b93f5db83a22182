"""The guarded release (optiq/rl/release.py): what users get changes only after it matched BC on probes."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

from optiq.envs import make_vec
from optiq.rl import release
from optiq.rl.averaging import evaluated_policy
from optiq.rl.demo_sac import DemoSAC
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings
from optiq.rl.release import ReleaseGate

PPO_KWARGS = dict(n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu", policy_kwargs={"net_arch": [16, 16]})


def _ppo(check_steps: int = 128, **settings) -> HybridPPO:
    hybrid = HybridSettings(
        release_check_steps=check_steps, release_check_episodes=1, release_reference_episodes=2, **settings
    )
    return HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=hybrid, **PPO_KWARGS)


def _flat(policy: th.nn.Module) -> th.Tensor:
    return th.cat([t.flatten() for t in policy.state_dict().values() if t.is_floating_point()])


def _scripted_probes(monkeypatch, returns: list[float], steps: int = 10) -> list[th.Tensor]:
    """Probe returns from a script, each probe taking ``steps`` env steps; returns the probed weights."""
    probed: list[th.Tensor] = []
    script = iter(returns)

    def probe(model, policy, venv, n_episodes):
        probed.append(_flat(policy).clone())
        return np.full(n_episodes, next(script)), steps

    monkeypatch.setattr(release, "probe_returns", probe)
    return probed


def test_a_candidate_below_bc_is_kept_back_and_one_at_bc_is_released(monkeypatch):
    model = _ppo(check_steps=128)
    start = _flat(model.policy).clone()
    # BC's reference 100, then a check that falls short (99), then one that matches (100)
    probed = _scripted_probes(monkeypatch, [100.0, 99.0, 100.0])
    checks = []
    gate = ReleaseGate(make_vec("Hopper-v5", 1, seed=5), on_check=checks.append)
    model.learn(64 * 5, callback=gate)
    assert model.release_reference == 100.0
    assert [row["released"] for row in checks] == [1.0, 0.0, 1.0]
    assert th.equal(probed[0], start)  # the reference is BC's weights, before any update
    assert not th.equal(probed[1], start)
    assert th.equal(_flat(model.released_policy), probed[2])  # the last passing candidate is what users get
    with evaluated_policy(model):
        assert model.policy is model.released_policy


def test_a_failed_check_keeps_the_last_released_weights(monkeypatch):
    model = _ppo(check_steps=64)
    probed = _scripted_probes(monkeypatch, [100.0, 120.0] + [50.0] * 10)
    model.learn(64 * 4, callback=ReleaseGate(make_vec("Hopper-v5", 1, seed=5)))
    assert model.release_count == 2  # the start and the first check
    assert th.equal(_flat(model.released_policy), probed[1])
    assert not th.equal(_flat(model.released_policy), _flat(model.policy))


def test_probe_steps_spend_the_budget_and_the_start_is_still_step_zero(monkeypatch):
    model = _ppo(check_steps=64)
    _scripted_probes(monkeypatch, [100.0] * 10, steps=30)
    seen_at_start = []

    class StartWatcher(release.BaseCallback):
        def _on_training_start(self) -> None:
            seen_at_start.append(self.model.num_timesteps)

        def _on_step(self) -> bool:
            return True

    model.learn(64 * 3, callback=[ReleaseGate(make_vec("Hopper-v5", 1, seed=5)), StartWatcher()])
    assert seen_at_start == [0]  # an evaluation listed after the gate still sees step 0
    assert model.release_probe_steps > 0
    assert model.release_probe_steps % 30 == 0
    # env steps = training steps (whole rollouts of 64) + probe steps
    assert (model.num_timesteps - model.release_probe_steps) % 64 == 0
    assert model.num_timesteps - model.release_probe_steps < 64 * 3


def test_the_guard_off_changes_nothing():
    plain = HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=HybridSettings(), **PPO_KWARGS)
    plain.learn(128)
    off = _ppo(check_steps=0)
    off.learn(128)
    assert off.released_policy is None
    assert th.equal(_flat(plain.policy), _flat(off.policy))


def test_a_real_probe_counts_its_episode_lengths():
    model = _ppo(check_steps=64)
    returns, steps = release.probe_returns(model, model.policy, make_vec("Hopper-v5", 1, seed=5), 2)
    assert returns.shape == (2,)
    assert steps >= 2  # Hopper's random-ish policy falls within a few dozen steps


def test_release_state_survives_save_and_load(tmp_path, monkeypatch):
    model = _ppo(check_steps=64)
    _scripted_probes(monkeypatch, [100.0, 150.0] + [10.0] * 10)
    model.learn(64 * 3, callback=ReleaseGate(make_vec("Hopper-v5", 1, seed=5)))
    model.save(tmp_path / "model.zip")
    loaded = HybridPPO.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    assert loaded.release_reference == 100.0
    assert loaded.release_next_check == model.release_next_check
    assert loaded.release_probe_steps == model.release_probe_steps
    assert th.equal(_flat(loaded.released_policy), _flat(model.released_policy))


def test_sac_guards_its_release_too(monkeypatch):
    model = DemoSAC(
        "MlpPolicy",
        make_vec("Hopper-v5", 1, seed=0),
        release_check_steps=20,
        release_check_episodes=1,
        learning_starts=0,
        batch_size=32,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16, 16]},
    )
    _scripted_probes(monkeypatch, [100.0] + [50.0] * 10)
    start = _flat(model.policy).clone()
    model.learn(60, callback=ReleaseGate(make_vec("Hopper-v5", 1, seed=5)))
    assert model.release_count == 1  # only BC's start
    assert th.equal(_flat(model.released_policy), start)


@pytest.mark.parametrize("bad", [{"release_check_steps": -1}, {"release_check_episodes": 0}])
def test_bad_settings_are_refused(bad):
    settings = {"release_check_steps": 64, "release_check_episodes": 1, **bad}
    with pytest.raises(ValueError, match="release_check"):
        HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=HybridSettings(**settings), **PPO_KWARGS)


def test_finetune_hands_on_the_released_policy(tiny_config, tmp_path):
    from optiq.rl.training import latest_checkpoint, read_eval_csv
    from tests.helpers import finetune_from_tiny_bc

    summary = finetune_from_tiny_bc(
        tiny_config, tmp_path, release_check_steps=256, release_check_episodes=1, release_reference_episodes=2
    )
    assert summary["release"]["probe_steps"] > 0
    assert summary["release"]["reference_return"] is not None
    assert summary["total_timesteps"] >= 768
    rows = read_eval_csv(tmp_path / "run" / "eval.csv")
    assert rows[0]["timesteps"] == 0
    final = PPO.load(tmp_path / "run" / "final_model.zip", device="cpu")  # stock SB3
    resumable = HybridPPO.load(latest_checkpoint(tmp_path / "run" / "checkpoints").model, device="cpu")
    assert th.equal(_flat(final.policy), _flat(resumable.released_policy))
