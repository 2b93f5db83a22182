"""What tests share besides fixtures: tiny settings, synthetic demos, running a script, the error check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from imitation.data import types

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "demos.n_episodes": 2,
    "bc.n_epochs": 2,
    "bc.checkpoint_every": 1,
    "bc.batch_size": 64,
    "finetune.total_timesteps": 1024,
    "finetune.checkpoint_freq": 512,
    "finetune.ppo.hyperparams.n_steps": 256,
    "finetune.ppo.hyperparams.batch_size": 64,
    "finetune.ppo.hyperparams.n_epochs": 1,
    "finetune.ppo.policy_kwargs.net_arch": {"pi": [32, 32], "vf": [32, 32]},
    "finetune.sac.policy_kwargs.net_arch": [32, 32],
    "finetune.sac.hyperparams.learning_starts": 100,
    "eval.eval_freq": 512,
    "eval.n_eval_episodes": 1,
    "eval.final_episodes": 1,
    "eval.video_length": 20,
}


def synthetic_trajectories(
    n: int = 4, length: int = 30, obs_dim: int = 11, act_dim: int = 3, seed: int = 0
) -> list[types.TrajectoryWithRew]:
    rng = np.random.default_rng(seed)
    return [
        types.TrajectoryWithRew(
            obs=rng.normal(size=(length + 1, obs_dim)).astype(np.float32),
            acts=rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32),
            infos=None,
            terminal=bool(i % 2),
            rews=rng.normal(size=length).astype(np.float32),
        )
        for i in range(n)
    ]


def tiny_set_args() -> list[str]:
    """``TINY`` as ``--set KEY=VALUE`` arguments for the scripts."""
    args = []
    for key, value in TINY.items():
        text = str(value).replace("'", '"') if isinstance(value, dict) else str(value)
        args += ["--set", f"{key}={text}"]
    return args


def run_python(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` with captured text output, warnings off and a wide console (rich wraps at 80)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )


def run_script(script: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """A repository script (path relative to the checkout) with ``args``."""
    return run_python(str(REPO / script), *args, cwd=cwd, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Bad input's contract: exit code 2 and one ``error: ...`` line naming each fragment."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def finetune_from_tiny_bc(config: dict, tmp_path: Path, total: int = 768, **bc_rl: object) -> dict:
    """Stage 04 ``--init bc`` (PPO) from a BC trained on synthetic demos, with ``bc_rl`` overrides; its summary."""
    from optiq.bc.train import list_bc_checkpoints, train_bc
    from optiq.demos.storage import save_demos
    from optiq.policies import PolicyFiles
    from optiq.rl.finetune import finetune

    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(config, tmp_path / "demos", tmp_path / "bc", seed=0, algo="ppo", device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    config["finetune"]["ppo"]["bc_rl"].update(critic_warmup_steps=128, actor_lr_warmup_steps=0, bc_reference_episodes=0)
    # Hopper's noise check would spend much of this tiny budget: off unless a test asks for it
    config["finetune"]["ppo"]["bc_rl"].update(log_std_floor=None, log_std_floor_tolerance=None)
    config["finetune"]["ppo"]["bc_rl"].update(bc_rl)
    return finetune(
        config,
        tmp_path / "run",
        "ppo",
        "bc",
        0,
        bc_files,
        total,
        device="cpu",
        progress_bar=False,
        demos_path=tmp_path / "demos" / "demos.npz",
    )
