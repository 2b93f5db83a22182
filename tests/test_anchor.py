"""The return-driven BC anchor (optiq/rl/anchor.py) and HybridPPO's use of it."""

import numpy as np
import pytest

from optiq.config import load_env_config
from optiq.envs import make_vec
from optiq.errors import OptiqError
from optiq.rl.anchor import BC_SCALE_LIMIT, next_log_scale
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


def test_ppo_anchor_is_off_by_default_and_episodes_change_nothing():
    model = _hybrid(critic_warmup_steps=10, bc_coeff=1.0)
    model.learn(256)
    assert model.bc_reference_returns == [] and model.bc_log_scale == 0.0


def test_ppo_anchor_state_survives_a_checkpoint(tmp_path):
    model = _hybrid(critic_warmup_steps=10, bc_coeff=1.0, bc_reference_episodes=3)
    model.bc_reference_returns = [10.0, 20.0, 30.0]
    model.bc_log_scale = -1.5
    model.save(tmp_path / "model.zip")
    loaded = HybridPPO.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0))
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
