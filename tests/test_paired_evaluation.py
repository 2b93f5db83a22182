"""eval.paired_episodes: every periodic evaluation on the same start states (optiq/rl/training.py)."""

from __future__ import annotations

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

from optiq.algos import make_eval_venv
from optiq.config import load_env_config
from optiq.envs import make_vec
from optiq.rl import finetune as finetune_module
from optiq.rl.training import EvalLog, PeriodicEvaluation, evaluation_reseed

EPISODES = 4


def _evaluations(tmp_path, config, reseed: int | None, n: int = 3) -> list[float]:
    """``n`` evaluations of one unchanging policy (random weights: episodes end at different steps)."""
    model = PPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), seed=0, device="cpu")
    model.set_logger(configure(None, []))
    evaluation = PeriodicEvaluation(
        make_eval_venv(config, "ppo", 1000, normalize=False), EvalLog(tmp_path / "eval.csv"), 0, EPISODES, reseed=reseed
    )
    evaluation.init_callback(model)
    returns = []
    for step in range(n):
        evaluation.num_timesteps = step
        returns.append(evaluation.evaluate()["return_mean"])
    return returns


def test_a_policy_that_never_changes_scores_the_same_on_paired_evaluations(tmp_path):
    config = load_env_config("Hopper-v5")
    paired = _evaluations(tmp_path / "paired", config, reseed=1000)
    fresh = _evaluations(tmp_path / "fresh", config, reseed=None)
    assert paired[0] == paired[1] == paired[2]
    assert len(set(fresh)) > 1  # fresh start states each time: the same policy scores differently
    assert paired[0] == fresh[0]  # the first evaluation is the one an unpaired run makes


def test_the_setting_is_off_by_default_and_turns_the_reseed_on():
    assert evaluation_reseed(load_env_config("Hopper-v5"), 1007) is None
    assert evaluation_reseed(load_env_config("Hopper-v5", overrides={"eval.paired_episodes": True}), 1007) == 1007
    with pytest.raises(Exception, match="'eval.paired_episodes' must be true or false, got 'yes'"):
        load_env_config("Hopper-v5", overrides={"eval.paired_episodes": "yes"})


def test_stage_04_evaluations_are_paired_when_asked(tiny_config, tmp_path, monkeypatch):
    seen = []
    original = PeriodicEvaluation.__init__

    def record(self, *args, **kwargs):
        seen.append(kwargs.get("reseed"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(PeriodicEvaluation, "__init__", record)
    tiny_config["eval"]["paired_episodes"] = True
    finetune_module.finetune(tiny_config, tmp_path / "run", "ppo", "scratch", 3, device="cpu", progress_bar=False)
    assert seen == [1003]
    rows = EvalLog(tmp_path / "run" / "eval.csv").rows
    assert len(rows) >= 2
