"""The Hopper-v5 expert in experts/ is real: produced by 01_collect_demos.py and as good as recorded."""

from optiq.config import load_env_config
from optiq.demos.expert import expert_files, expert_info
from optiq.evaluation.evaluate import evaluate_saved_policy
from optiq.paths import shipped_expert


def test_shipped_hopper_expert_records_how_it_was_made_and_performs():
    folder = shipped_expert("Hopper-v5")
    assert folder is not None, "experts/Hopper-v5/expert.json is missing"
    info = expert_info(folder)
    assert info["command"].startswith("01_collect_demos.py") and "--train-expert" in info["command"]
    assert info["seed"] == 0 and info["total_timesteps"] >= 1_000_000
    assert info["return_mean"] >= 2000, info["return_mean"]
    result = evaluate_saved_policy(
        load_env_config("Hopper-v5"), expert_files(folder), n_episodes=2, seed=123, device="cpu"
    )
    assert result["return_mean"] >= 0.8 * info["return_mean"]
