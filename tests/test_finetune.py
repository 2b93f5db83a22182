"""Stage 04: periodic evaluation, checkpoints, resume, unlearning report."""

import pytest

from optiq.errors import OptiqError
from optiq.rl.finetune import finetune
from optiq.rl.training import latest_checkpoint, read_eval_csv, unlearning_report


def test_every_init_has_one_start_builder_or_is_an_imitation_baseline():
    from optiq.rl.finetune import START_BUILDERS
    from optiq.rl.inits import IMITATION_INITS, INITS

    assert sorted([*START_BUILDERS, *IMITATION_INITS]) == sorted(INITS)
    assert not set(START_BUILDERS) & set(IMITATION_INITS)


def test_unlearning_report():
    rows = [
        {"timesteps": t, "return_mean": r} for t, r in [(0, 1000), (100, 600), (200, 800), (300, 1200), (1000, 2000)]
    ]
    report = unlearning_report(rows, total_timesteps=1000)
    assert report["return_at_start"] == 1000
    assert report["min_return_early"] == 600
    assert report["unlearning_ratio"] == 0.6


def test_scratch_run_writes_curve_and_resumes(tiny_config, tmp_path):
    run_dir = tmp_path / "ppo_scratch_seed0"
    summary = finetune(
        tiny_config, run_dir, "ppo", "scratch", seed=0, total_timesteps=512, device="cpu", progress_bar=False
    )
    assert summary["total_timesteps"] == 512
    assert latest_checkpoint(run_dir / "checkpoints").timesteps == 512
    rows = read_eval_csv(run_dir / "eval.csv")
    assert [r["timesteps"] for r in rows] == [0, 512]

    summary = finetune(
        tiny_config, run_dir, "ppo", "scratch", seed=0, total_timesteps=1024, device="cpu", progress_bar=False
    )
    assert summary["total_timesteps"] == 1024
    rows = read_eval_csv(run_dir / "eval.csv")
    assert [r["timesteps"] for r in rows] == [0, 512, 1024]  # continued, not restarted
    for name in ("final_model.zip", "vecnormalize.pkl", "summary.json", "run.json"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tb").iterdir())

    # Resuming the finished run with a smaller budget is refused and leaves its record alone.
    record = (run_dir / "run.json").read_bytes()
    with pytest.raises(OptiqError, match="would shrink it"):
        finetune(tiny_config, run_dir, "ppo", "scratch", seed=0, total_timesteps=512, device="cpu", progress_bar=False)
    assert (run_dir / "run.json").read_bytes() == record
    # With its own budget it is finished already: nothing trains, the curve stays.
    again = finetune(
        tiny_config, run_dir, "ppo", "scratch", seed=0, total_timesteps=1024, device="cpu", progress_bar=False
    )
    assert again["total_timesteps"] == 1024
    assert [r["timesteps"] for r in read_eval_csv(run_dir / "eval.csv")] == [0, 512, 1024]


def test_same_seed_gives_identical_evaluation_returns(tiny_config, tmp_path):
    runs = [
        finetune(
            tiny_config,
            tmp_path / name,
            "ppo",
            "scratch",
            seed=7,
            total_timesteps=512,
            device="cpu",
            progress_bar=False,
        )
        for name in ("a", "b")
    ]
    curves = [
        [(r["timesteps"], r["return_mean"]) for r in read_eval_csv(tmp_path / name / "eval.csv")] for name in "ab"
    ]
    assert curves[0] == curves[1]
    assert runs[0]["final_return"] == runs[1]["final_return"]
    other = finetune(
        tiny_config, tmp_path / "c", "ppo", "scratch", seed=8, total_timesteps=512, device="cpu", progress_bar=False
    )
    assert other["final_return"] != runs[0]["final_return"]


def test_wandb_offline_run_dir_is_created_when_enabled(tiny_config, tmp_path, monkeypatch):
    import argparse

    from optiq.paths import RunPaths
    from optiq.rl.pipeline import finetune_stage

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = argparse.Namespace(
        wandb=True, wandb_project="optiq-test", wandb_entity=None, wandb_group=None, wandb_tags=["ci"]
    )
    paths = RunPaths(tmp_path, "Hopper-v5", "quick")
    finetune_stage(
        tiny_config,
        paths,
        "ppo",
        "scratch",
        0,
        total_timesteps=256,
        device="cpu",
        progress_bar=False,
        tracker_args=args,
    )
    offline_runs = list((paths.finetune("ppo", "scratch", 0) / "wandb").glob("offline-run-*"))
    assert offline_runs, "wandb should write an offline run directory"


def test_tracking_off_by_default_writes_no_wandb(tiny_config, tmp_path):
    from optiq.paths import RunPaths
    from optiq.rl.pipeline import finetune_stage

    paths = RunPaths(tmp_path, "Hopper-v5", "quick")
    finetune_stage(tiny_config, paths, "ppo", "scratch", 0, total_timesteps=256, device="cpu", progress_bar=False)
    assert not (paths.finetune("ppo", "scratch", 0) / "wandb").exists()


def test_bc_init_variants_and_hybrid_resume(tiny_config, tmp_path):
    """bc (HybridPPO with demos), bc_naive (stock PPO) from the same BC checkpoint; hybrid resumes."""
    from optiq.bc.train import list_bc_checkpoints, train_bc
    from optiq.demos.storage import save_demos
    from optiq.policies import PolicyFiles, load_model
    from tests.helpers import synthetic_trajectories

    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(tiny_config, tmp_path / "demos", tmp_path / "bc", seed=0, algo="ppo", device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    tiny_config["finetune"]["ppo"]["bc_rl"].update(critic_warmup_steps=256, actor_lr_warmup_steps=256, mix_ratio=0.25)
    demos = tmp_path / "demos" / "demos.npz"

    hybrid = finetune(
        tiny_config, tmp_path / "h", "ppo", "bc", 0, bc_files, 512, device="cpu", progress_bar=False, demos_path=demos
    )
    assert hybrid["policy"]["model_class"] is None and hybrid["extensions"]["mix_ratio"] == 0.25
    assert load_model(PolicyFiles.from_json(hybrid["policy"]), "cpu").__class__.__name__ == "PPO"  # stock SB3
    assert latest_checkpoint(tmp_path / "h" / "checkpoints").model.is_file()  # HybridPPO state for resuming
    resumed = finetune(
        tiny_config, tmp_path / "h", "ppo", "bc", 0, bc_files, 1024, device="cpu", progress_bar=False, demos_path=demos
    )
    # Hopper's noise check spent env steps before the first rollout, so the grid of 256-step rollouts is
    # shifted; the resumed run keeps the first run's decision instead of checking again.
    assert hybrid["log_std_floor"] is not None and resumed["log_std_floor"] == hybrid["log_std_floor"]
    assert 1024 <= resumed["total_timesteps"] < 1024 + 256

    naive = finetune(tiny_config, tmp_path / "n", "ppo", "bc_naive", 0, bc_files, 512, device="cpu", progress_bar=False)
    assert naive["policy"]["model_class"] is None and naive["extensions"] is None
    # both started from the same BC policy: identical returns at step 0
    start = [read_eval_csv(tmp_path / d / "eval.csv")[0]["return_mean"] for d in ("h", "n")]
    assert start[0] == start[1]


def test_bc_start_keeps_bc_observation_statistics(tiny_config, tmp_path):
    """Fine-tuning from BC must see observations exactly as BC did: the statistics stay frozen."""
    import pickle

    from optiq.bc.train import list_bc_checkpoints, train_bc
    from optiq.demos.storage import save_demos
    from optiq.policies import PolicyFiles
    from tests.helpers import synthetic_trajectories

    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(tiny_config, tmp_path / "demos", tmp_path / "bc", seed=0, algo="ppo", device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    finetune(tiny_config, tmp_path / "n", "ppo", "bc_naive", 0, bc_files, 512, device="cpu", progress_bar=False)
    with open(bc_files.vecnormalize, "rb") as f:
        before = pickle.load(f).obs_rms
    with open(tmp_path / "n" / "vecnormalize.pkl", "rb") as f:
        after = pickle.load(f)
    assert (after.obs_rms.mean == before.mean).all() and (after.obs_rms.var == before.var).all()
    assert after.ret_rms.count > 1  # reward statistics still learn


def test_sac_from_bc_uses_demo_sac(tiny_config, tmp_path):
    from optiq.bc.train import list_bc_checkpoints, train_bc
    from optiq.demos.storage import save_demos
    from optiq.policies import PolicyFiles, load_model
    from tests.helpers import synthetic_trajectories

    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(tiny_config, tmp_path / "demos", tmp_path / "bc", seed=0, algo="sac", device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    demos = tmp_path / "demos" / "demos.npz"
    summary = finetune(
        tiny_config, tmp_path / "s", "sac", "bc", 0, bc_files, 300, device="cpu", progress_bar=False, demos_path=demos
    )
    assert summary["extensions"]["demo_fraction"] == 0.5
    assert load_model(PolicyFiles.from_json(summary["policy"]), "cpu").__class__.__name__ == "SAC"  # stock SB3


def test_bc_steps_warm_up_before_rl(tiny_config, tmp_path):
    import numpy as np

    from optiq.demos.storage import save_demos
    from tests.helpers import synthetic_trajectories

    demos = save_demos(tmp_path / "demos.npz", synthetic_trajectories(n=4, length=80))
    summary = finetune(
        tiny_config,
        tmp_path / "w",
        "ppo",
        "scratch",
        0,
        total_timesteps=256,
        device="cpu",
        progress_bar=False,
        demos_path=demos,
        bc_steps=50,
        bc_batch_size=32,
    )
    assert summary["total_timesteps"] >= 256
    assert np.isfinite(summary["final_return"])
