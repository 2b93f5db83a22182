"""The averaged policy (optiq/rl/averaging.py): what is evaluated and saved, training untouched."""

import math

import pytest
import torch as th
from stable_baselines3 import PPO

from optiq.envs import make_vec
from optiq.rl import training
from optiq.rl.averaging import average_decay, blend_into, evaluated_policy
from optiq.rl.demo_sac import DemoSAC
from optiq.rl.export import stock_model
from optiq.rl.hybrid_ppo import HybridPPO, HybridSettings
from optiq.rl.training import EvalLog, PeriodicEvaluation

PPO_KWARGS = dict(n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu", policy_kwargs={"net_arch": [16, 16]})
SAC_KWARGS = dict(learning_starts=0, batch_size=32, seed=0, device="cpu", policy_kwargs={"net_arch": [16, 16]})


def _ppo(horizon: int) -> HybridPPO:
    settings = HybridSettings(policy_average_steps=horizon)
    return HybridPPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), hybrid=settings, **PPO_KWARGS)


def _flat(policy: th.nn.Module) -> th.Tensor:
    return th.cat([t.flatten() for t in policy.state_dict().values() if t.is_floating_point()])


def test_average_decay_follows_the_horizon_in_env_steps():
    assert average_decay(1000, 1000) == pytest.approx(math.exp(-1))
    # one update after 2n steps keeps as much of the old average as two updates after n steps each
    assert average_decay(128, 500) == pytest.approx(average_decay(64, 500) ** 2)


def test_blend_is_the_per_tensor_formula_bit_for_bit_and_copies_integers():
    gen = th.Generator().manual_seed(0)
    current = {"w": th.randn(64, 32, generator=gen), "b": th.randn(32, generator=gen), "n": th.tensor(7)}
    averaged = {"w": th.randn(64, 32, generator=gen), "b": th.randn(32, generator=gen), "n": th.tensor(3)}
    expected = {k: v.clone() for k, v in averaged.items()}
    for _ in range(3):
        for name in ("w", "b"):
            expected[name].mul_(0.9).add_(current[name], alpha=1.0 - 0.9)
        blend_into(averaged, current, 0.9)
    assert all(th.equal(averaged[k], expected[k]) for k in ("w", "b"))
    assert int(averaged["n"]) == 7


def test_update_moves_the_average_towards_the_weights_by_the_horizon():
    model = _ppo(horizon=640)
    model.update_policy_average()  # the first update copies
    start = _flat(model.averaged_policy).clone()
    assert th.equal(start, _flat(model.policy))
    with th.no_grad():
        for p in model.policy.parameters():
            p.add_(1.0)
    model.num_timesteps += 640
    model.update_policy_average()
    moved = _flat(model.averaged_policy) - start
    assert th.allclose(moved, th.full_like(moved, 1 - math.exp(-1)), atol=1e-5)


def test_the_average_starts_from_the_weights_learn_starts_from():
    model = _ppo(horizon=500)
    with th.no_grad():  # as copy_bc_weights does after construction
        for p in model.policy.parameters():
            p.add_(0.5)
    start = _flat(model.policy).clone()
    model.learn(64)  # one rollout, one update
    decay = average_decay(64, 500)
    expected = decay * start + (1 - decay) * _flat(model.policy)
    assert th.allclose(_flat(model.averaged_policy), expected, atol=1e-6)


def test_training_is_unchanged_and_the_average_lags_the_weights():
    plain = _ppo(horizon=0)
    plain.learn(256)  # built and trained one after the other: each seeds torch's global RNG
    averaged = _ppo(horizon=256)
    averaged.learn(256)
    assert plain.averaged_policy is None
    assert th.equal(_flat(plain.policy), _flat(averaged.policy))  # the raw policy trains exactly as before
    assert averaged.policy_averaged_at == 256
    assert not th.allclose(_flat(averaged.averaged_policy), _flat(averaged.policy))


def test_evaluated_policy_swaps_in_the_average_and_restores_the_raw_one():
    model = _ppo(horizon=256)
    raw = model.policy
    with evaluated_policy(model):
        assert model.policy is raw  # not started: the raw policy (BC as copied) is the average
    model.learn(128)
    with evaluated_policy(model):
        assert model.policy is model.averaged_policy
        exported = stock_model(model)
    assert model.policy is raw
    assert type(exported) is PPO
    assert th.equal(_flat(exported.policy), _flat(model.averaged_policy))  # final_model.zip holds the average


def test_periodic_evaluation_evaluates_the_average(tmp_path, monkeypatch):
    model = _ppo(horizon=256)
    model.learn(128)
    seen = []
    monkeypatch.setattr(
        training, "evaluate_returns", lambda m, venv, n: seen.append(m.policy) or (th.zeros(1).numpy(),) * 2
    )
    evaluation = PeriodicEvaluation(make_vec("Hopper-v5", 1, seed=1), EvalLog(tmp_path / "eval.csv"), 1000, 1)
    evaluation.init_callback(model)
    evaluation.evaluate()
    assert seen == [model.averaged_policy]


def test_ppo_average_survives_save_and_load(tmp_path):
    model = _ppo(horizon=256)
    model.learn(128)
    model.save(tmp_path / "model.zip")
    loaded = HybridPPO.load(tmp_path / "model.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    assert loaded.policy_averaged_at == 128
    assert th.equal(_flat(loaded.averaged_policy), _flat(model.averaged_policy))
    assert not th.equal(_flat(loaded.averaged_policy), _flat(loaded.policy))


def test_sac_keeps_an_average_per_env_step_and_resumes_it(tmp_path):
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), policy_average_steps=50, **SAC_KWARGS)
    model.learn(40)
    assert model.policy_averaged_at == 40
    assert not th.equal(_flat(model.averaged_policy), _flat(model.policy))
    model.save(tmp_path / "sac.zip")
    loaded = DemoSAC.load(tmp_path / "sac.zip", env=make_vec("Hopper-v5", 1, seed=0), device="cpu")
    assert th.equal(_flat(loaded.averaged_policy), _flat(model.averaged_policy))
    obs = loaded.get_env().reset()
    with evaluated_policy(loaded):
        averaged_action, _ = loaded.predict(obs, deterministic=True)
    raw_action, _ = loaded.predict(obs, deterministic=True)
    assert (averaged_action == loaded.averaged_policy.predict(obs, deterministic=True)[0]).all()
    assert (raw_action == loaded.policy.predict(obs, deterministic=True)[0]).all()
    assert not (averaged_action == raw_action).all()


def test_negative_horizon_is_refused():
    with pytest.raises(ValueError, match="policy_average_steps must be >= 0"):
        _ppo(horizon=-1)


def test_finetune_hands_on_the_average_and_checkpoints_keep_both(tiny_config, tmp_path):
    from optiq.rl.training import latest_checkpoint
    from tests.helpers import finetune_from_tiny_bc

    summary = finetune_from_tiny_bc(tiny_config, tmp_path, policy_average_steps=1000)
    assert summary["extensions"]["policy_average_steps"] == 1000
    final = PPO.load(tmp_path / "run" / "final_model.zip", device="cpu")  # stock SB3
    resumable = HybridPPO.load(latest_checkpoint(tmp_path / "run" / "checkpoints").model, device="cpu")
    assert th.equal(_flat(final.policy), _flat(resumable.averaged_policy))
    assert not th.equal(_flat(final.policy), _flat(resumable.policy))
