#!/usr/bin/env python
"""Overhead of optiq's stage-04 fine-tuning vs a bare SB3 ``learn()`` on the same env and config.

Both sides build the same PPO (Hopper-v5 hparams, VecNormalize, one torch thread) and train
the same number of env steps, interleaved (bare, optiq, bare, optiq, ...) so machine load
hits both alike. optiq's side is the real ``optiq.rl.finetune.finetune`` with its
checkpointing, CSV/TensorBoard logging and run records; periodic evaluation is off (it is
a feature that costs env steps, not overhead), the start/end evaluations are one episode.
Prints steps/s of each repetition and, last, ``overhead_ratio=<optiq/bare>`` (target >= 0.95).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from optiq.algos import build_model, make_training_venv
from optiq.config import load_env_config
from optiq.rl.finetune import finetune
from optiq.seeding import seed_everything


def bare_sb3(config: dict, steps: int, seed: int) -> float:
    seed_everything(seed)
    venv = make_training_venv(config, "ppo", seed)
    model = build_model(config, "ppo", venv, seed, device="cpu")
    start = time.perf_counter()
    model.learn(steps, progress_bar=False)
    return steps / (time.perf_counter() - start)


def optiq_finetune(config: dict, steps: int, seed: int, folder: Path) -> float:
    start = time.perf_counter()
    finetune(config, folder, "ppo", "scratch", seed, total_timesteps=steps, device="cpu", progress_bar=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=16384, help="env steps per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    overrides = {"eval.eval_freq": 0, "eval.n_eval_episodes": 1, "finetune.checkpoint_freq": args.steps // 4}
    config = load_env_config(args.env, "full", overrides=overrides)
    bare, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            bare.append(bare_sb3(config, args.steps, seed=rep))
            ours.append(optiq_finetune(config, args.steps, rep, Path(tmp) / f"rep{rep}"))
            print(f"rep {rep}: bare SB3 {bare[-1]:7.1f} steps/s   optiq 04 {ours[-1]:7.1f} steps/s")
    ratio = statistics.median(ours) / statistics.median(bare)
    print(f"median: bare {statistics.median(bare):.1f} steps/s, optiq {statistics.median(ours):.1f} steps/s")
    print(f"overhead_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
