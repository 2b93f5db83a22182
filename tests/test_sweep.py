"""Sweeps: the study spec, its job graph, the cross-env report, and whole tiny sweeps on the local pool and on
a Ray cluster started inside the test (same results; a killed Ray worker's job resumes from its checkpoint)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from optiq.atomic_io import read_json, write_json
from optiq.errors import OptiqError
from optiq.rl.training import read_eval_csv
from optiq.sweep.graph import env_runs, study_steps
from optiq.sweep.run import run_sweep
from optiq.sweep.spec import SweepSpec, load_spec, parse_env
from optiq.sweep.study import EnvResults, write_study
from tests.helpers import REPO, TINY, assert_one_line_error, run_script


def _tiny_overrides(**extra) -> list[str]:
    values = {**TINY, **extra}
    return [f"{key}={value}".replace("'", '"') for key, value in values.items()]


def test_spec_from_yaml_with_per_env_sources(tmp_path):
    path = tmp_path / "study.yml"
    path.write_text(
        "envs: [Hopper-v5, {env: Ant-v5, source: scripted}]\n"
        "methods: [bc, bc_rl, scratch]\nseeds: [3, 4]\npreset: quick\nset: ['finetune.total_timesteps=2048']\n"
    )
    spec = load_spec(path)
    assert [(e.env_id, e.source) for e in spec.envs] == [("Hopper-v5", "expert"), ("Ant-v5", "scripted")]
    assert spec.methods == ("bc_only", "bc_rl", "scratch")  # the old name "bc" still parses and spec.seeds == [3, 4]
    assert spec.overrides == ["finetune.total_timesteps=2048"]
    assert parse_env("Ant-v5:scripted").source == "scripted"


@pytest.mark.parametrize(
    "text, message",
    [
        ("envs: []\n", "'envs' must be a non-empty list"),
        ("envs: [Hopper-v5]\nseed: [0]\n", "unknown key(s) seed"),
        ("envs: [Hopper-v5]\nseeds: [0, 0]\n", "lists a seed twice"),
        ("envs: [Hopper-v5:teleop]\n", "unknown demo source 'teleop'"),
        ("envs: [Hopper-v5, Hopper-v5]\n", "lists an env twice"),
        ("envs: [Hopper-v5]\npreset: huge\n", "preset 'huge' unknown"),
        ("envs: [Hopper-v5\n", "not valid YAML"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "study.yml"
    path.write_text(text)
    with pytest.raises(OptiqError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec(path)


def test_sweep_script_rejects_an_unknown_env_before_any_job(tmp_path):
    result = run_script("scripts/sweep.py", "--envs", "Hopper-v5", "Nope-v0", "--outputs", str(tmp_path))
    assert_one_line_error(result, "Nope-v0")
    assert not (tmp_path / "Hopper-v5").exists()


def test_study_graph_runs_demos_before_bc_and_compares_after_every_env_job(tmp_path):
    spec = SweepSpec(envs=[parse_env("Hopper-v5"), parse_env("Ant-v5:scripted")], seeds=[0, 1])
    steps = study_steps(env_runs(spec, tmp_path))
    by_name = {step.name: step for step in steps}
    assert by_name["Ant-v5: bc seed 1"].after[0] == "Ant-v5: demos"
    assert "Hopper-v5: bc seed 0" in by_name["Hopper-v5: select seed 0"].after
    assert by_name["Hopper-v5: ppo_bc_seed1"].after == ("Hopper-v5: select seed 1",)
    compare = by_name["Ant-v5: compare"]
    assert {name for name in by_name if name.startswith("Ant-v5:") and name != "Ant-v5: compare"} - {
        "Ant-v5: demos"
    } <= set(compare.after)
    order = [step.stage for step in steps]
    assert order.index("finetune") > max(i for i, stage in enumerate(order) if stage == "bc")  # BC first


def _fake_env_results(folder: Path, env_id: str, random: float, expert: float, finals: dict) -> EnvResults:
    results = folder / env_id / "results.json"
    results.parent.mkdir(parents=True)
    write_json(results, {"random_return": random, "expert_return": expert, "final_returns_by_seed": finals})
    (results.parent / "report.html").write_text("<html></html>")
    return EnvResults(env_id, results, results.parent / "report.html")


def test_study_report_normalises_per_env_and_compares_every_method_pair(tmp_path):
    envs = [
        _fake_env_results(
            tmp_path, "A", 0.0, 100.0, {"bc_rl": {"0": 90, "1": 100, "2": 80}, "scratch": {"0": 10, "1": 20, "2": 0}}
        ),
        _fake_env_results(
            tmp_path,
            "B",
            -50.0,
            50.0,
            {"bc_rl": {"0": 40, "1": 50, "2": 30}, "scratch": {"0": -40, "1": -30, "2": -20}},
        ),
    ]
    summary = write_study(envs, [0, 1, 2], tmp_path / "study")
    assert summary["per_env_mean"]["bc_rl"] == pytest.approx({"A": 0.9, "B": 0.9})
    assert summary["per_env_mean"]["scratch"] == pytest.approx({"A": 0.1, "B": 0.2})
    assert np.asarray(summary["scores"]["scratch"]).shape == (3, 2)  # seeds x envs
    iqm = summary["normalised"]["bc_rl"]
    assert iqm["aggregate"] == "iqm" and iqm["low"] <= iqm["value"] <= iqm["high"]
    pair = next(p for p in summary["probability_of_improvement"] if p["x"] == "bc_rl" and p["y"] == "scratch")
    assert pair["value"] == 1.0  # every BC -> RL run beats every scratch run in both envs
    md = (tmp_path / "study" / "results.md").read_text()
    assert "[A](../A/report.html)" in md and "IQM" in md
    assert (tmp_path / "study" / "performance_profile.png").stat().st_size > 1000


def test_study_report_needs_per_seed_results(tmp_path):
    results = tmp_path / "A" / "results.json"
    results.parent.mkdir()
    write_json(results, {"random_return": 0.0, "expert_return": 1.0})
    with pytest.raises(OptiqError, match="rerun its compare"):
        write_study([EnvResults("A", results, results.parent / "report.html")], [0], tmp_path / "study")


# ----- whole sweeps -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """A one-machine Ray cluster for this module (make install puts ray in, as the optiq[ray] extra)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _tiny_spec(**changes) -> SweepSpec:
    spec = SweepSpec(
        envs=[parse_env("Hopper-v5"), parse_env("Ant-v5:scripted")],
        methods=("bc_rl", "scratch"),
        seeds=[0, 1],
        overrides=_tiny_overrides(),
        run_name="tiny",
        device="cpu",
    )
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


def test_tiny_sweep_on_ray_matches_the_local_pool(ray_cluster, tmp_path):
    spec = _tiny_spec()
    local = run_sweep(spec, tmp_path / "local", backend="local", jobs=2, progress_bar=False)
    on_ray = run_sweep(spec, tmp_path / "ray", backend="ray", progress_bar=False)
    assert on_ray["scores"] == local["scores"]  # same seeds, same threads: the same returns
    for env in ("Hopper-v5", "Ant-v5"):
        finals = read_json(tmp_path / "ray" / env / "tiny" / "06_compare" / "results.json")["final_returns_by_seed"]
        assert set(finals) == {"bc_rl", "scratch"} and set(finals["scratch"]) == {"0", "1"}
    assert (tmp_path / "ray" / "study" / "tiny" / "index.html").is_file()
    # A rerun finds every job done (no stage output is rewritten) and only rewrites the study report.
    curve = tmp_path / "ray" / "Hopper-v5" / "tiny" / "04_finetune" / "ppo_bc_seed0" / "eval.csv"
    before = curve.stat().st_mtime_ns
    again = run_sweep(spec, tmp_path / "ray", backend="ray", progress_bar=False)
    assert again["scores"] == on_ray["scores"] and curve.stat().st_mtime_ns == before


def _stage_pid(marker: str) -> int | None:
    """The pid of the stage script whose command line contains ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if " -m optiq finetune " in cmdline and marker in cmdline:  # a stage job: python -m optiq finetune ...
            return int(entry.name)
    return None


def _parent_pid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_a_killed_ray_worker_resumes_its_job_from_the_checkpoint(ray_cluster, tmp_path):
    outputs = tmp_path / "outputs"
    total = 8192
    overrides = _tiny_overrides(
        **{"finetune.total_timesteps": total, "finetune.checkpoint_freq": 1024, "eval.eval_freq": 1024}
    )
    spec = _tiny_spec(envs=[parse_env("Hopper-v5")], methods=("scratch",), seeds=[0], overrides=overrides)
    run_dir = outputs / "Hopper-v5" / "tiny" / "04_finetune" / "ppo_scratch_seed0"
    killed: dict[str, int] = {}
    finished = threading.Event()

    def kill_worker_mid_run() -> None:
        while not finished.is_set() and not killed:
            try:
                steps = read_json(run_dir / "checkpoints" / "latest.json")["timesteps"]
            except (OSError, ValueError, KeyError):
                steps = 0
            pid = _stage_pid(str(outputs)) if 2048 <= steps < total else None
            if pid is not None:
                worker = _parent_pid(pid)
                os.kill(worker, signal.SIGKILL)  # the Ray worker; its job dies with it (PDEATHSIG)
                killed.update(worker=worker, job=pid, steps=steps)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_mid_run, daemon=True)
    killer.start()
    try:
        summary = run_sweep(spec, outputs, backend="ray", progress_bar=False)
    finally:
        finished.set()
        killer.join(timeout=5)
    assert killed, "the fine-tuning job finished before its worker could be killed"
    log = (outputs / "Hopper-v5" / "tiny" / "04_finetune" / "ppo_scratch_seed0.log").read_text()
    assert "previous attempt's worker died" in log
    assert f"at {killed['steps']} steps" in " ".join(log.split())  # resumed from the checkpoint, not from zero
    steps = [row["timesteps"] for row in read_eval_csv(run_dir / "eval.csv")]
    assert steps[0] == 0 and steps[-1] == total and steps == sorted(set(steps))
    assert summary["scores"]["scratch"] and summary["envs"] == ["Hopper-v5"]


def test_sweep_script_help_explains_backends():
    result = run_script("scripts/sweep.py", "--help")
    assert result.returncode == 0
    for word in ("--backend", "ray", "--address", "shared filesystem", "--spec"):
        assert word in result.stdout
    assert Path(REPO / "scripts" / "sweep.py").is_file()
