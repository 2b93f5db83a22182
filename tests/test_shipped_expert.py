"""The experts and medium demonstrators in experts/ are real: produced by 01_collect_demos.py and as
good as recorded."""

import pytest

from optiq.config import load_env_config
from optiq.demos.expert import expert_files, expert_info
from optiq.evaluation.evaluate import evaluate_saved_policy
from optiq.paths import SHIPPED_EXPERTS, shipped_expert


@pytest.mark.parametrize(("env_id", "min_return", "n_episodes"), [("Hopper-v5", 2000, 2), ("Walker2d-v5", 2500, 3)])
def test_shipped_expert_records_how_it_was_made_and_performs(env_id, min_return, n_episodes):
    folder = shipped_expert(env_id)
    assert folder is not None, f"experts/{env_id}/expert.json is missing"
    info = expert_info(folder)
    assert info["command"].startswith("01_collect_demos.py") and "--train-expert" in info["command"]
    assert info["seed"] == 0 and info["total_timesteps"] >= 1_000_000
    assert info["return_mean"] >= min_return, info["return_mean"]
    result = evaluate_saved_policy(
        load_env_config(env_id), expert_files(folder), n_episodes=n_episodes, seed=123, device="cpu"
    )
    assert result["return_mean"] >= 0.8 * info["return_mean"]


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_shipped_medium_demonstrator_is_an_early_policy_at_30_to_50_percent_of_the_expert(env_id):
    expert = expert_info(shipped_expert(env_id))
    folder = SHIPPED_EXPERTS / f"{env_id}-medium"
    info = expert_info(folder)
    assert info["command"].startswith("01_collect_demos.py") and "--train-expert" in info["command"]
    assert info["seed"] == expert["seed"] and info["total_timesteps"] < expert["total_timesteps"]
    assert 0.3 <= info["return_mean"] / expert["return_mean"] <= 0.5
    result = evaluate_saved_policy(load_env_config(env_id), expert_files(folder), n_episodes=3, seed=123, device="cpu")
    assert 0.8 * info["return_mean"] <= result["return_mean"] <= 1.2 * info["return_mean"]
