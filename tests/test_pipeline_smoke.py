"""End to end: run_all.py on a tiny budget, then a rerun that skips every stage."""

import os
import subprocess
import sys

from optiq.atomic_io import read_json
from tests.conftest import REPO, TINY


def _overrides() -> list[str]:
    args = []
    for key, value in TINY.items():
        text = str(value).replace("'", '"') if isinstance(value, dict) else str(value)
        args += ["--set", f"{key}={text}"]
    return args


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_run_all_end_to_end(tmp_path):
    outputs = tmp_path / "outputs"
    expert = tmp_path / "expert"
    trained = run(
        "scripts/01_collect_demos.py",
        "--outputs",
        str(outputs),
        "--train-expert",
        "--expert-timesteps",
        "512",
        "--expert-out",
        str(expert),
        "--skip-demos",
        "--no-progress",
        *_overrides(),
    )
    assert trained.returncode == 0, trained.stderr
    assert read_json(expert / "expert.json")["total_timesteps"] >= 512

    common = [
        "run_all.py",
        "--outputs",
        str(outputs),
        "--expert",
        str(expert),
        "--seeds",
        "0",
        "--no-progress",
        *_overrides(),
    ]
    first = run(*common)
    assert first.returncode == 0, first.stdout + first.stderr
    root = outputs / "Hopper-v5" / "quick"
    for stage in ("01_demos", "02_bc", "03_select", "06_compare"):
        assert read_json(root / stage / "run.json")["finished"], stage
    for label in ("bc_only", "ppo_bc_seed0", "ppo_scratch_seed0"):
        assert read_json(root / "05_eval" / label / "eval.json")["n_episodes"] == 1
        assert (root / "05_eval" / label / "video.mp4").stat().st_size > 1000, label
    report = (root / "06_compare" / "results.md").read_text()
    assert "**Verdict.**" in report
    for method in ("BC only", "BC -> RL", "RL from scratch"):
        assert f"| {method} |" in report
    for figure in ("learning_curves.png", "normalized_curves.png", "bc_training.png"):
        assert (root / "06_compare" / figure).stat().st_size > 10_000, figure
    assert (root / "05_eval" / "side_by_side.mp4").stat().st_size > 1000
    report_md = (root / "06_compare" / "report.md").read_text()
    assert report_md.index("**Verdict.**") < report_md.index("## Results")  # verdict first
    assert "learning_curves.png" in report_md and "bc_training.png" in report_md and "side_by_side.mp4" in report_md
    assert "ppo_bc_seed0" in report_md  # its unlearning report
    report_html = (root / "06_compare" / "report.html").read_text()
    assert report_html.count("data:image/png;base64,") == 3  # self-contained figures
    runs = read_json(outputs / "pipeline_runs.json")
    assert runs[-1]["status"] == "ok" and runs[-1]["verdict"]
    copy_report = read_json(root / "04_finetune" / "ppo_bc_seed0" / "copy_report.json")
    assert ["action_net", True] in copy_report["copied_layers"]
    assert "Verdict" in first.stdout

    second = run(*common)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("skip ") == 6, second.stdout
    assert len(read_json(outputs / "pipeline_runs.json")) == 2


def test_stages_after_a_rerun_stage_run_again(tmp_path, monkeypatch):
    """A finished eval must not be reused after fine-tuning reran (its inputs changed)."""
    from optiq import pipeline
    from optiq.paths import RunPaths

    ran = []
    monkeypatch.setattr(pipeline, "stage_complete", lambda stage, *a: stage != "finetune")
    monkeypatch.setattr(pipeline, "run_finetune_jobs", lambda *a: ran.append("finetune"))
    monkeypatch.setattr(pipeline, "eval_stage", lambda *a, **k: ran.append("eval"))
    monkeypatch.setattr(pipeline, "compare_stage", lambda *a, **k: ran.append("compare"))
    monkeypatch.setattr(pipeline, "read_json", lambda path: {})
    monkeypatch.setattr(pipeline, "_print_summary", lambda *a: None)
    opts = pipeline.PipelineOptions(
        algo="ppo",
        seeds=[0],
        force=set(),
        jobs=1,
        expert=None,
        video=False,
        device="cpu",
        progress_bar=False,
        hparams=REPO / "hparams.yml",
        overrides=[],
        preset="quick",
    )
    pipeline._run_stages({"env_id": "Hopper-v5"}, RunPaths(tmp_path, "Hopper-v5", "quick"), opts)
    assert ran == ["finetune", "eval", "compare"]
