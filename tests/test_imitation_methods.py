"""AIRL, GAIL and DAgger baselines (imitation library) in stage 04, and ``--methods`` of stages 06 / run_all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imitation.data import serialize
from stable_baselines3.common.vec_env import VecNormalize

from optiq.atomic_io import read_json, write_json
from optiq.compare.report import compare
from optiq.config import load_env_config
from optiq.demos.collect import collect_demos
from optiq.demos.expert import expert_files
from optiq.demos.storage import save_demos
from optiq.envs import make_vec
from optiq.errors import OptiqError
from optiq.evaluation.evaluate import evaluate_saved_policy
from optiq.paths import RunPaths
from optiq.policies import PolicyFiles, raw_obs_policy
from optiq.rl.finetune import finetune
from optiq.rl.imitation_methods import adversarial_settings, dagger_settings
from optiq.rl.training import read_eval_csv
from tests.helpers import (
    REPO,
    TINY,
    assert_one_line_error,
    run_python,
    run_script,
    synthetic_trajectories,
    tiny_set_args,
)

SHIPPED_EXPERT = REPO / "experts" / "Hopper-v5"
# A small discriminator batch: two shipped-expert episodes hold ~2,000 transitions.
IMITATION = {"imitation.adversarial.demo_batch_size": 64, "imitation.dagger.rounds": 2}


@pytest.fixture(scope="module")
def pipeline_with_airl(tmp_path_factory) -> tuple[Path, str]:
    """run_all on a tiny budget with --methods bc_only,bc_rl,scratch,airl (shipped expert, one seed)."""
    outputs = tmp_path_factory.mktemp("imitation") / "outputs"
    args = [
        "run_all.py",
        "--outputs",
        str(outputs),
        "--expert",
        str(SHIPPED_EXPERT),
        "--seeds",
        "0",
        "--no-video",
        "--no-progress",
        "--methods",
        "bc_only,bc_rl,scratch,airl",
        *tiny_set_args(),
        *[arg for key, value in IMITATION.items() for arg in ("--set", f"{key}={value}")],
    ]
    first = run_python(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_python(*args)
    assert second.returncode == 0, second.stderr
    return outputs / "Hopper-v5" / "quick", second.stdout


def test_airl_run_has_finetune_artefacts_and_is_compared(pipeline_with_airl):
    root, rerun_stdout = pipeline_with_airl
    run_dir = root / "04_finetune" / "ppo_airl_seed0"
    rows = read_json(root / "06_compare" / "results.json")["rows"]
    # 1,024 steps in PPO rollouts of 256, evaluated every 512 steps and at the start.
    assert [int(r["timesteps"]) for r in _eval_rows(run_dir)] == [0, 512, 1024]
    summary = read_json(run_dir / "summary.json")
    finetune_keys = {"env_id", "algo", "init", "seed", "total_timesteps", "final_return", "best_return"}
    assert finetune_keys | {"unlearning", "bc_checkpoint", "extensions", "bootstrap", "policy"} <= set(summary)
    assert summary["init"] == "airl" and summary["total_timesteps"] == 1024
    assert summary["extensions"]["demo_batch_size"] == 64 and summary["extensions"]["reward_net"] == "auto"
    assert summary["policy"]["vecnormalize"] is None and summary["policy"]["raw_obs"] is True
    assert read_json(run_dir / "run.json")["finished"]
    assert (run_dir / "final_model.zip").stat().st_size > 1000
    assert read_json(root / "05_eval" / "ppo_airl_seed0" / "eval.json")["n_episodes"] == 1  # stage 05 ran it

    by_method = {row["method"]: row for row in rows}
    assert list(by_method) == ["bc_only", "bc_rl", "scratch", "airl"]
    assert by_method["airl"]["n"] == 1
    assert by_method["airl"]["prob_improvement_vs_scratch"] is not None
    assert by_method["airl"]["return_at_100pct"] is not None
    report = (root / "06_compare" / "results.md").read_text()
    assert "| AIRL | 1 seed |" in report and "| RL from scratch | 1 seed |" in report
    assert "Other methods, final return: AIRL" in report  # the extra verdict sentence
    assert read_json(root / "06_compare" / "results.json")["methods"] == ["bc_only", "bc_rl", "scratch", "airl"]
    assert rerun_stdout.count("skip ") == 6, rerun_stdout  # the finished AIRL run and comparison are reused


def test_compare_names_the_script_for_a_method_without_runs(pipeline_with_airl, tiny_config):
    root, _ = pipeline_with_airl
    paths = RunPaths(root.parent.parent, "Hopper-v5", "quick")
    with pytest.raises(OptiqError, match=r"no finished ppo runs of method 'gail'.*04_finetune_rl.py .*--init gail"):
        compare(paths, tiny_config, "ppo", out_dir=root / "compare_gail", methods=("bc_only", "gail"))


def test_dagger_queries_the_expert_and_logs_env_steps(tmp_path):
    config = load_env_config("Hopper-v5", "quick", overrides={**TINY, **IMITATION, "imitation.dagger.bc_epochs": 2})
    demos = tmp_path / "01_demos"
    collect_demos(config, SHIPPED_EXPERT, demos, n_episodes=2, seed=0, device="cpu")
    run_dir = tmp_path / "ppo_dagger_seed0"
    summary = finetune(
        config, run_dir, "ppo", "dagger", 0, demos_path=demos / "demos.npz", device="cpu", progress_bar=False
    )

    budget = round(0.1 * TINY["finetune.total_timesteps"])  # imitation.dagger.budget_fraction
    steps = [int(r["timesteps"]) for r in _eval_rows(run_dir)]
    assert steps[0] == 0 and steps == sorted(set(steps)) and len(steps) >= 2
    assert steps[-1] >= budget and summary["total_timesteps"] == steps[-1]
    assert summary["extensions"]["budget_timesteps"] == budget

    # Every collected state is labelled with the expert's action (observations are stored normalised).
    vecnorm = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), make_vec("Hopper-v5", 1, 0))
    expert = raw_obs_policy(expert_files(SHIPPED_EXPERT), make_vec("Hopper-v5", 1, 0), "cpu")
    collected = [serialize.load(p)[0] for p in sorted((run_dir / "dagger" / "demos" / "round-001").iterdir())]
    obs = np.concatenate([t.obs[:-1] for t in collected])
    acts = np.concatenate([t.acts for t in collected])
    unclipped = np.all(np.abs(obs) < vecnorm.clip_obs - 1e-3, axis=1)
    assert unclipped.sum() > 10
    expert_acts, _ = expert(vecnorm.unnormalize_obs(obs[unclipped]))
    np.testing.assert_allclose(expert_acts, acts[unclipped], atol=1e-4)

    files = PolicyFiles.from_json(summary["policy"])
    assert files.vecnormalize == run_dir / "vecnormalize.pkl" and not files.raw_obs
    assert evaluate_saved_policy(config, files, 1, seed=5, device="cpu")["n_episodes"] == 1


def test_dagger_without_a_queryable_expert_is_an_error(tmp_path, tiny_config):
    save_demos(tmp_path / "01_demos" / "demos.npz", synthetic_trajectories())
    write_json(tmp_path / "01_demos" / "metadata.json", {"env_id": "Hopper-v5", "source": "minari"})
    with pytest.raises(OptiqError, match="needs an expert to query.*'minari'"):
        finetune(tiny_config, tmp_path / "run", "ppo", "dagger", 0, demos_path=tmp_path / "01_demos" / "demos.npz")
    assert not (tmp_path / "run").exists()


def test_imitation_settings_are_validated_on_load():
    with pytest.raises(OptiqError, match="unknown key 'imitation.adversarial.demo_batchsize' in --set; did you mean"):
        load_env_config("Hopper-v5", overrides={"imitation.adversarial.demo_batchsize": 64})
    with pytest.raises(OptiqError, match="reward_net' must be one of: auto, basic, shaped, got 'deep'"):
        load_env_config("Hopper-v5", overrides={"imitation.adversarial.reward_net": "deep"})
    with pytest.raises(OptiqError, match="'imitation.dagger.rounds' must be an integer >= 1, got 'many'"):
        load_env_config("Hopper-v5", overrides={"imitation.dagger.rounds": "many"})
    defaults = adversarial_settings(load_env_config("Hopper-v5"))
    assert defaults.demo_batch_size == 512 and defaults.normalize_reward
    sized_config = load_env_config("Hopper-v5", overrides={"imitation.adversarial.reward_hid_sizes": [8]})
    sized = adversarial_settings(sized_config)
    assert sized.reward_hid_sizes == (8,)


def test_imitation_settings_built_in_code_get_the_same_checks():
    config = load_env_config("Hopper-v5")
    config["imitation"]["adversarial"]["demo_batchsize"] = 64
    with pytest.raises(OptiqError, match="unknown key.*demo_batchsize in imitation.adversarial; known: .*demo_batch"):
        adversarial_settings(config)
    config = load_env_config("Hopper-v5")
    config["imitation"]["dagger"]["budget_fraction"] = 0
    with pytest.raises(OptiqError, match=r"'imitation.dagger.budget_fraction' must be a number in \(0, 1\], got 0"):
        dagger_settings(config)


def test_bad_method_and_sac_adversarial_are_one_line_errors(tmp_path):
    result = run_script("scripts/06_compare.py", "--outputs", str(tmp_path), "--methods", "bc_only,bc_rl,irl")
    assert_one_line_error(result, "unknown method 'irl' in --methods", "bc_only, bc_rl, scratch, bc_naive, airl, gail")
    result = run_script("scripts/04_finetune_rl.py", "--outputs", str(tmp_path), "--init", "airl", "--algo", "sac")
    assert_one_line_error(result, "--init airl trains a PPO policy", "use --algo ppo")
    assert not (tmp_path / "Hopper-v5" / "quick" / "04_finetune").exists()


def _eval_rows(run_dir: Path) -> list[dict[str, float]]:
    return read_eval_csv(run_dir / "eval.csv")
