"""log_std_floor_tolerance (optiq/rl/exploration.py): the floor is kept only where BC's return tolerates it."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from optiq.config import load_env_config
from optiq.errors import OptiqError
from optiq.rl.exploration import NoiseToleranceCheck
from optiq.rl.finetune import extension_kwargs
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings

KWARGS = dict(n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})


class SteadyHand(gym.Env):
    """Reward 1 per step while |action| < 0.1; a larger action ends the episode. At most 50 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        steady = abs(float(action[0])) < 0.1
        return np.zeros(2, np.float32), float(steady), not steady, self.t >= 50, {}


def _steady_model(floor: float, tolerance: float) -> HybridPPO:
    settings = HybridSettings(critic_warmup_steps=64, log_std_floor=floor, log_std_floor_tolerance=tolerance)
    model = HybridPPO("MlpPolicy", make_vec_env(SteadyHand, 1, seed=0), hybrid=settings, **KWARGS)
    with th.no_grad():  # a "BC" that holds its hand steady: mean 0, std 0.007
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.zero_()
        model.policy.log_std.fill_(-5.0)
    return model


@pytest.mark.parametrize("floor, kept", [(-1.0, False), (-4.0, True)])
def test_the_floor_is_kept_only_where_bc_s_return_tolerates_it(floor, kept):
    """std 0.37 (log -1) ends most episodes at once: 1-2 steps against 50, far below 0.8 x; std 0.018 (-4) does not."""
    model = _steady_model(floor, tolerance=0.8)
    model.learn(1, callback=NoiseToleranceCheck(make_vec_env(SteadyHand, 1, seed=7)))  # the check, no rollout
    decision = model.log_std_floor_decision
    assert decision["kept"] is kept
    assert decision["own_std_return"] == 50.0
    assert (decision["floor_return"] < 0.8 * 50) is not kept
    assert th.allclose(model.policy.log_std, th.full_like(model.policy.log_std, floor if kept else -5.0))
    # the 10 check episodes spent the budget, not the critic's warm-up (64 steps), which starts after them
    steps = decision["steps"]
    assert steps >= 5 * 50 and model.num_timesteps == model.pre_warmup_steps == steps
    model.learn(64, reset_num_timesteps=False)  # SB3 adds these to the steps done
    assert model.num_timesteps == steps + 64 and model.in_critic_warmup()
    model.learn(64, reset_num_timesteps=False)
    assert not model.in_critic_warmup()


def test_a_resumed_run_keeps_its_decision(tmp_path):
    model = _steady_model(-1.0, tolerance=0.0)  # tolerance 0: any floor is kept
    model.learn(64, callback=NoiseToleranceCheck(make_vec_env(SteadyHand, 1, seed=7)))
    assert model.log_std_floor_decision["kept"]
    model.save(tmp_path / "model.zip")
    loaded = HybridPPO.load(tmp_path / "model.zip", env=make_vec_env(SteadyHand, 1, seed=0), device="cpu")
    assert loaded.log_std_floor_decision == model.log_std_floor_decision
    steps = loaded.num_timesteps
    loaded.learn(64, reset_num_timesteps=False, callback=NoiseToleranceCheck(make_vec_env(SteadyHand, 1, seed=7)))
    assert loaded.num_timesteps == steps + 64  # no second check
    assert loaded.pre_warmup_steps == model.pre_warmup_steps


def test_a_tolerance_without_a_floor_is_a_one_line_error():
    overrides = {"finetune.ppo.bc_rl.log_std_floor": None, "finetune.ppo.bc_rl.log_std_floor_tolerance": 0.8}
    config = load_env_config("Hopper-v5", "quick", overrides=overrides)
    with pytest.raises(OptiqError, match="log_std_floor_tolerance needs a log_std_floor"):
        extension_kwargs(config, "ppo", "bc")


def test_finetune_runs_the_check_and_reports_it(tiny_config, tmp_path):
    from optiq.rl.training import read_eval_csv
    from tests.helpers import finetune_from_tiny_bc

    summary = finetune_from_tiny_bc(
        tiny_config, tmp_path, log_std_floor=-1.0, log_std_floor_tolerance=0.5, log_std_floor_check_episodes=2
    )
    decision = summary["log_std_floor"]
    assert decision is not None and decision["steps"] > 0 and isinstance(decision["kept"], bool)
    rows = read_eval_csv(tmp_path / "run" / "eval.csv")
    assert rows[0]["timesteps"] == 0  # BC's evaluation comes before the check's episodes
    assert summary["total_timesteps"] >= 768
