"""Stage 04: periodic evaluation, checkpoints, resume, unlearning report."""

from optiq.rl.finetune import finetune, unlearning_report
from optiq.rl.training import latest_checkpoint, read_eval_csv


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
