"""Kill stages 02 and 04 with SIGKILL mid-run; the same command resumes from the last checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from optiq.atomic_io import read_json
from optiq.bc.train import read_metrics
from optiq.demos.storage import save_demos
from optiq.rl.training import read_eval_csv
from tests.helpers import REPO, synthetic_trajectories

SMALL_NET = ["--set", 'finetune.ppo.policy_kwargs.net_arch={"pi": [32, 32], "vf": [32, 32]}']


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("finished before it could be killed:\n" + proc.stdout.read())
        try:
            if ready():
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # files appear as the run goes
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("timed out waiting for a checkpoint")


def test_finetune_resumes_after_sigkill(tmp_path):
    outputs = tmp_path / "outputs"
    command = [
        "scripts/04_finetune_rl.py",
        "--outputs",
        str(outputs),
        "--init",
        "scratch",
        "--total-steps",
        "12288",
        "--no-progress",
        "--set",
        "finetune.checkpoint_freq=2048",
        "--set",
        "eval.eval_freq=2048",
        "--set",
        "eval.n_eval_episodes=1",
        "--set",
        "finetune.ppo.hyperparams.n_steps=1024",
        *SMALL_NET,
    ]
    run_dir = outputs / "Hopper-v5" / "quick" / "04_finetune" / "ppo_scratch_seed0"
    latest = run_dir / "checkpoints" / "latest.json"
    proc = _start(command)
    _kill_when(proc, lambda: read_json(latest)["timesteps"] >= 4096)
    killed_at = read_json(latest)["timesteps"]
    assert killed_at < 12288
    assert not (run_dir / "summary.json").exists()

    resumed = _start(command)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"at {killed_at} steps" in " ".join(out.split())  # resumed, not restarted
    summary = read_json(run_dir / "summary.json")
    assert summary["total_timesteps"] == 12288
    steps = [row["timesteps"] for row in read_eval_csv(run_dir / "eval.csv")]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 12288
    # at most one checkpoint interval of evaluations was redone
    assert all(b - a <= 2048 for a, b in zip(steps, steps[1:]))
    # the VecNormalize statistics were carried over too (their count covers all steps)
    import pickle

    with open(run_dir / "vecnormalize.pkl", "rb") as handle:
        assert pickle.load(handle).obs_rms.count > 12000


def test_bc_resumes_after_sigkill(tmp_path):
    outputs = tmp_path / "outputs"
    demos = outputs / "Hopper-v5" / "quick" / "01_demos"
    save_demos(demos / "demos.npz", synthetic_trajectories(n=10, length=400))
    command = [
        "scripts/02_train_bc.py",
        "--outputs",
        str(outputs),
        "--epochs",
        "400",
        "--no-progress",
        "--set",
        "bc.checkpoint_every=2",
        "--set",
        "bc.batch_size=32",
        *SMALL_NET,
    ]
    bc_dir = outputs / "Hopper-v5" / "quick" / "02_bc"
    proc = _start(command)
    _kill_when(proc, lambda: max(c["epoch"] for c in read_json(bc_dir / "checkpoints.json")["checkpoints"]) >= 4)
    killed_at = max(c["epoch"] for c in read_json(bc_dir / "checkpoints.json")["checkpoints"])
    assert killed_at < 400
    stamp = (bc_dir / "checkpoints" / "epoch_0002.zip").stat().st_mtime_ns

    resumed = _start([*command[:4], str(killed_at + 4), *command[5:]])
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    epochs = [row["epoch"] for row in read_metrics(bc_dir / "metrics.csv")]
    assert epochs == list(range(1, killed_at + 5))
    assert (bc_dir / "checkpoints" / "epoch_0002.zip").stat().st_mtime_ns == stamp  # earlier epochs not redone
    assert not list(Path(bc_dir).rglob("*.tmp*"))  # no half-written files left for a later stage


def test_ctrl_c_during_finetuning_saves_a_checkpoint_and_the_rerun_resumes_there(tmp_path):
    outputs = tmp_path / "outputs"
    command = [
        "scripts/04_finetune_rl.py",
        "--outputs",
        str(outputs),
        "--init",
        "scratch",
        "--total-steps",
        "8192",
        "--no-progress",
        "--set",
        "finetune.checkpoint_freq=100000",  # no periodic checkpoint before the end: only the interrupt saves one
        "--set",
        "eval.eval_freq=2048",
        "--set",
        "eval.n_eval_episodes=1",
        "--set",
        "finetune.ppo.hyperparams.n_steps=512",
        *SMALL_NET,
    ]
    run_dir = outputs / "Hopper-v5" / "quick" / "04_finetune" / "ppo_scratch_seed0"
    proc = _start(command)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(read_eval_csv(run_dir / "eval.csv")) >= 2:  # past the 2048-step evaluation
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    stopped_at = read_json(run_dir / "checkpoints" / "latest.json")["timesteps"]
    assert 2048 <= stopped_at < 8192
    assert not (run_dir / "summary.json").exists()

    resumed = _start(command)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"at {stopped_at} steps" in " ".join(out.split())
    steps = [row["timesteps"] for row in read_eval_csv(run_dir / "eval.csv")]
    # the evaluation schedule survives the interrupt; PPO then finishes its last rollout (a step past 8192)
    assert steps[:5] == [0, 2048, 4096, 6144, 8192] and len(steps) <= 6
