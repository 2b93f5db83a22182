#!/usr/bin/env python
"""The same small sweep on the local process pool and on a one-machine Ray cluster, side by side.

Both backends run the same stage jobs (2 envs x 2 inits x 2 seeds at tiny settings by default:
demos, BC, selection, fine-tuning, evaluation, comparison; Hopper-v5 from the shipped expert,
Ant-v5 from the scripted gait) with the same number of jobs at once (this machine's cores), in
fresh output folders, local first then Ray (the Ray cluster's start-up is counted). Checks that
both studies hold the same scores, and prints last
``ray_overhead_ratio=<local wall s / ray wall s>`` (1.0: no overhead; target >= 0.9 on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from optiq.seeding import available_cores
from optiq.sweep.run import run_sweep
from optiq.sweep.spec import SweepSpec, parse_env

TINY = {
    "demos.n_episodes": 2,
    "bc.n_epochs": 2,
    "bc.checkpoint_every": 1,
    "bc.batch_size": 64,
    "finetune.total_timesteps": 2048,
    "finetune.checkpoint_freq": 1024,
    "finetune.ppo.hyperparams.n_steps": 256,
    "finetune.ppo.hyperparams.batch_size": 64,
    "finetune.ppo.hyperparams.n_epochs": 1,
    "finetune.ppo.policy_kwargs.net_arch": '{"pi": [32, 32], "vf": [32, 32]}',
    "eval.eval_freq": 1024,
    "eval.n_eval_episodes": 1,
    "eval.final_episodes": 1,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["Hopper-v5", "Ant-v5:scripted"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--jobs", type=int, default=available_cores(), help="jobs at once on both backends")
    args = parser.parse_args()
    spec = SweepSpec(
        envs=[parse_env(text) for text in args.envs],
        methods=("bc_rl", "scratch"),
        seeds=args.seeds,
        overrides=[f"{key}={value}" for key, value in TINY.items()],
        run_name="overhead",
        device="cpu",
    )
    walls, scores = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("local", "ray"):
            started = time.monotonic()
            summary = run_sweep(spec, Path(tmp) / backend, backend=backend, jobs=args.jobs, progress_bar=False)
            walls[backend] = time.monotonic() - started
            scores[backend] = summary["scores"]
            print(f"{backend}: {walls[backend]:.1f} s for {len(spec.envs)} envs x 2 inits x {len(spec.seeds)} seeds")
    print(f"same scores on both backends: {scores['local'] == scores['ray']}")
    print(f"ray_overhead_ratio={walls['local'] / walls['ray']:.2f}")


if __name__ == "__main__":
    main()
