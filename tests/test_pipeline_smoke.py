"""End to end: run_all.py on a tiny budget with two BC seeds, a rerun that skips every stage,
a changed setting that reruns exactly what depends on it, and a corrupt demos file refused
before anything trains."""

import re
import shutil
import subprocess
import sys

import pytest

from optiq.atomic_io import read_json
from tests.helpers import REPO, run_python, tiny_set_args


def _run_all(outputs, expert, *extra: str) -> subprocess.CompletedProcess:
    return run_python(
        "run_all.py",
        "--outputs",
        str(outputs),
        "--expert",
        str(expert),
        "--seeds",
        "0",
        "1",
        "--no-progress",
        *tiny_set_args(),
        *extra,
    )


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """A finished tiny run_all with BC seeds 0 and 1, and the stdout of a rerun of the same command."""
    tmp_path = tmp_path_factory.mktemp("smoke")
    outputs = tmp_path / "outputs"
    expert = tmp_path / "expert"
    trained = run_python(
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
        *tiny_set_args(),
    )
    assert trained.returncode == 0, trained.stderr
    assert read_json(expert / "expert.json")["total_timesteps"] >= 512
    first = _run_all(outputs, expert)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Verdict" in first.stdout
    second = _run_all(outputs, expert)
    assert second.returncode == 0, second.stderr
    return outputs, expert, second.stdout


def test_run_all_end_to_end_with_bc_seeds(two_seeds):
    outputs, _, _ = two_seeds
    root = outputs / "Hopper-v5" / "quick"
    for stage in ("01_demos", "02_bc/seed0", "02_bc/seed1", "03_select/seed0", "03_select/seed1", "06_compare"):
        assert read_json(root / stage / "run.json")["finished"], stage
        assert read_json(root / stage / "fingerprint.json")["code_version"] >= 1, stage
    assert not (root / "02_bc" / "checkpoints.json").exists()  # no single BC beside the per-seed ones
    # each seed trained its own BC (its seed drives the split, init and shuffling), and BC -> RL starts from it
    bc = {s: read_json(root / "03_select" / f"seed{s}" / "best.json") for s in (0, 1)}
    assert bc[0]["candidates"] != bc[1]["candidates"]
    for seed in (0, 1):
        assert read_json(root / "02_bc" / f"seed{seed}" / "run.json")["seed"] == seed
        copy_report = read_json(root / "04_finetune" / f"ppo_bc_seed{seed}" / "copy_report.json")
        assert copy_report["source"] == bc[seed]["model"]
        assert ["action_net", True] in copy_report["copied_layers"]
    labels = [
        "bc_only_seed0",
        "bc_only_seed1",
        "ppo_bc_seed0",
        "ppo_bc_seed1",
        "ppo_scratch_seed0",
        "ppo_scratch_seed1",
    ]
    for label in labels:
        assert read_json(root / "05_eval" / label / "eval.json")["n_episodes"] == 1
        assert (root / "05_eval" / label / "video.mp4").stat().st_size > 1000, label
    assert not (root / "05_eval" / "bc_only").exists()

    results = read_json(root / "06_compare" / "results.json")
    rows = {row["method"]: row for row in results["rows"]}
    assert rows["bc_only"]["n"] == 2 and rows["bc_only"]["seeds"] == [0, 1]  # one score per BC seed
    bc_means = [read_json(root / "05_eval" / f"bc_only_seed{s}" / "eval.json")["return_mean"] for s in (0, 1)]
    assert rows["bc_only"]["final_return_mean"] == pytest.approx(sum(bc_means) / 2)
    assert results["seeds"] == [0, 1] and results["bc_seeds"] == [0, 1]
    report = (root / "06_compare" / "results.md").read_text()
    assert "**Verdict.**" in report
    assert "| BC only | 2 seeds |" in report and "| BC -> RL | 2 seeds |" in report
    assert "| RL from scratch | 2 seeds |" in report
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
    assert len(runs) == 2


def test_a_rerun_skips_every_stage(two_seeds):
    _, _, rerun_stdout = two_seeds
    assert rerun_stdout.count("skip ") == 6, rerun_stdout
    assert "rerunning" not in rerun_stdout and "resuming" not in rerun_stdout


def test_a_changed_setting_reruns_what_depends_on_it(two_seeds, tmp_path):
    outputs, expert, _ = two_seeds
    copy = tmp_path / "outputs"
    shutil.copytree(outputs, copy)
    root = copy / "Hopper-v5" / "quick"
    scratch_summary = root / "04_finetune" / "ppo_scratch_seed0" / "summary.json"
    stamp = scratch_summary.stat().st_mtime_ns
    bc_stamp = (root / "02_bc" / "seed0" / "checkpoints.json").stat().st_mtime_ns

    result = _run_all(copy, expert, "--set", "finetune.ppo.bc_rl.bc_coeff=0.5")
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "finetune ppo_bc_seed0, ppo_bc_seed1: finetune.ppo.bc_rl.bc_coeff changed 1.0 -> 0.5: rerunning" in out
    for stage in ("demos", "bc", "select"):
        assert f"skip {stage}:" in out
    assert scratch_summary.stat().st_mtime_ns == stamp  # scratch does not read bc_rl: reused
    assert (root / "02_bc" / "seed0" / "checkpoints.json").stat().st_mtime_ns == bc_stamp
    for seed in (0, 1):
        run_dir = root / "04_finetune" / f"ppo_bc_seed{seed}"
        assert read_json(run_dir / "fingerprint.json")["settings"]["finetune"]["ppo"]["bc_rl"]["bc_coeff"] == 0.5
        assert read_json(run_dir / "run.json")["config"]["finetune"]["ppo"]["bc_rl"]["bc_coeff"] == 0.5
    for seed in (0, 1):  # each evaluation is planned when its run finishes: one line each, or one for both
        assert re.search(rf"eval [^:]*ppo_bc_seed{seed}[^:]*: the policy changed", out), out
    assert "compare:" in out and "skip compare" not in out

    again = _run_all(copy, expert, "--set", "finetune.ppo.bc_rl.bc_coeff=0.5")
    assert again.returncode == 0 and again.stdout.count("skip ") == 6, again.stdout

    changed_bc = _run_all(copy, expert, "--set", "finetune.ppo.bc_rl.bc_coeff=0.5", "--set", "bc.l2_weight=0.001")
    assert changed_bc.returncode == 0, changed_bc.stdout + changed_bc.stderr
    out = " ".join(changed_bc.stdout.split())
    assert "bc seed 0, seed 1: bc.l2_weight changed 0.0 -> 0.001: rerunning" in out
    for seed in (0, 1):
        assert re.search(rf"select [^:]*seed {seed}[^:]*: the BC checkpoints changed: rerunning", out), out
    for seed in (0, 1):
        assert re.search(rf"finetune [^:]*ppo_bc_seed{seed}[^:]*: the selected BC checkpoint changed", out), out
    assert scratch_summary.stat().st_mtime_ns == stamp


def test_a_corrupt_demos_file_is_refused_before_anything_trains(two_seeds, tmp_path):
    outputs, expert, _ = two_seeds
    copy = tmp_path / "outputs"
    shutil.copytree(outputs, copy)
    root = copy / "Hopper-v5" / "quick"
    shutil.rmtree(root / "04_finetune" / "ppo_scratch_seed0")  # a job that does not even read the demos
    shutil.rmtree(root / "02_bc" / "seed1")
    (root / "01_demos" / "demos.npz").write_bytes(b"PK\x03\x04 not a demos file")
    result = _run_all(copy, expert)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "demos" in lines[0], result.stderr
    assert "--force demos" in lines[0]
    assert "skip demos" not in result.stdout
    assert not (root / "04_finetune" / "ppo_scratch_seed0").exists()  # nothing trained
    assert not (root / "02_bc" / "seed1").exists()


def test_force_redoes_the_stage_and_every_later_one(tmp_path, monkeypatch):
    """--force finetune: finished fine-tuning, evaluation and comparison are all redone."""
    from optiq import pipeline
    from optiq.paths import RunPaths

    ran = []

    def graph(*_):
        def job(stage, unit):
            ran.append((stage, unit.restart))
            return pipeline.Job(stage, [sys.executable, "-c", ""], tmp_path / f"{stage}.log", 1.0, lambda: 1.0)

        return [
            pipeline.Step(
                stage,
                stage,
                (),
                lambda stage=stage: pipeline.Unit("", stage, tmp_path / stage, "complete"),
                lambda unit, stage=stage: job(stage, unit),
            )
            for stage in pipeline.GRAPH_STAGES
        ]

    monkeypatch.setattr(
        pipeline, "plan_stage", lambda stage, *a: [pipeline.Unit("", stage, tmp_path / stage, "complete")]
    )
    monkeypatch.setattr(pipeline, "job_graph", graph)
    monkeypatch.setattr(pipeline, "_check_reused", lambda *a: None)
    monkeypatch.setattr(pipeline, "check_demos", lambda *a: None)
    monkeypatch.setattr(pipeline, "compare_stage", lambda *a, **k: ran.append(("compare", True)))
    monkeypatch.setattr(pipeline, "read_json", lambda path: {})
    monkeypatch.setattr(pipeline, "_print_summary", lambda *a: None)
    opts = pipeline.PipelineOptions(
        algo="ppo",
        seeds=[0],
        force={"finetune"},
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
    assert ran == [("finetune", True), ("eval", True), ("compare", True)]  # and --restart for the jobs
