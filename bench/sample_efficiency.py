#!/usr/bin/env python
"""Sample efficiency of BC -> RL: scratch vs naive BC -> PPO vs the improved recipe (HybridPPO).

For each env: demos, BC and checkpoint selection run once (stages 01-03, preset quick
settings), then 04_finetune_rl runs `scratch`, `bc_naive` and `bc` (critic warm-up, actor
LR warm-up, decaying BC term, V-trace demo samples) for every seed, two at a time, all with
the env's tuned (rl-baselines3-zoo) PPO settings, so the comparison is fair. Printed per env
and method: env steps to 90 % of expert return (mean over seeds; a seed that never gets
there counts as the whole budget and makes the number a lower bound), the speedup over
scratch, the unlearning ratio (worst eval return in the first 20 % / return at step 0) and
the final return relative to the expert. The last line is
`speedup=<x> unlearning=<y> final_vs_expert=<z>` for the improved method on the first env.

  python bench/sample_efficiency.py --quick          # Hopper-v5, 3 seeds, ~45 min on 2 cores
  python bench/sample_efficiency.py --full           # + Walker2d-v5, HalfCheetah-v5 (hours)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from optiq.atomic_io import read_json, write_json
from optiq.bc.pipeline import select_stage, train_bc_stage
from optiq.compare.statistics import speedup_ci, steps_to_threshold_ci
from optiq.config import DEFAULT_HPARAMS, load_env_config, parse_override
from optiq.demos.pipeline import collect_stage
from optiq.paths import DEFAULT_OUTPUTS, RunPaths, shipped_expert
from optiq.pipeline import PipelineOptions, run_finetune_jobs
from optiq.rl.training import read_eval_csv

METHODS = ("scratch", "bc_naive", "bc")
TITLES = {"scratch": "scratch", "bc_naive": "naive BC->PPO", "bc": "improved BC->PPO"}


def run_env(env_id: str, seeds: list[int], budget: int, outputs: Path, overrides: list[str], jobs: int) -> dict:
    settings = dict(parse_override(o) for o in overrides)
    settings["finetune.total_timesteps"] = budget
    config = load_env_config(env_id, "quick", DEFAULT_HPARAMS, settings)
    paths = RunPaths(outputs, env_id, f"bench_sample_efficiency_{budget}")
    if not (paths.demos / "metadata.json").is_file():
        collect_stage(config, paths, seeds[0], train=shipped_expert(env_id) is None, progress_bar=False)
    if not (paths.bc / "checkpoints.json").is_file():
        train_bc_stage(config, paths, seeds[0], "ppo", progress_bar=False)
    select_stage(config, paths, seeds[0])
    opts = PipelineOptions(
        algo="ppo",
        seeds=seeds,
        force=set(),
        jobs=jobs,
        expert=None,
        video=False,
        device="cpu",
        progress_bar=True,
        hparams=DEFAULT_HPARAMS,
        overrides=[*overrides, f"finetune.total_timesteps={budget}"],
        preset="quick",
        inits=METHODS,
    )
    run_finetune_jobs(config, paths, opts)

    expert = float(read_json(paths.demos / "metadata.json")["expert_return_mean"])
    threshold = 0.9 * expert
    curves = {m: [read_eval_csv(paths.finetune("ppo", m, s) / "eval.csv") for s in seeds] for m in METHODS}
    summaries = {m: [read_json(paths.finetune("ppo", m, s) / "summary.json") for s in seeds] for m in METHODS}
    results = {"env_id": env_id, "expert_return": expert, "budget": budget, "seeds": seeds, "methods": {}}
    for method in METHODS:
        steps = steps_to_threshold_ci(curves[method], threshold, budget)
        speed = speedup_ci(curves[method], curves["scratch"], threshold, budget)
        ratios = [
            s["unlearning"]["unlearning_ratio"]
            for s in summaries[method]
            if s["unlearning"]["unlearning_ratio"] is not None
        ]
        finals = [s["final_return"] for s in summaries[method]]
        results["methods"][method] = {
            "steps_to_90pct": steps.estimate.value,
            "steps_lower_bound": steps.lower_bound,
            "seeds_reached": steps.reached,
            "speedup_vs_scratch": speed.estimate.value if speed.estimate else None,
            "speedup_text": speed.text(),
            "speedup_lower_bound": speed.lower_bound,
            "unlearning_ratio": float(np.mean(ratios)) if ratios else None,
            "final_return_mean": float(np.mean(finals)),
            "final_vs_expert": float(np.mean(finals)) / expert,
        }
    write_json(paths.root / "sample_efficiency.json", results)
    return results


def print_table(results: dict) -> None:
    head = f"{results['env_id']}: expert {results['expert_return']:.0f}, budget {results['budget']:,} steps"
    print(f"\n{head}, seeds {results['seeds']}")
    print(f"{'method':<18} {'steps to 90%':>16} {'speedup':>22} {'unlearning':>11} {'final/expert':>13}")
    for method, r in results["methods"].items():
        bound = ">=" if r["steps_lower_bound"] else ""
        steps = f"{bound}{r['steps_to_90pct']:,.0f} ({r['seeds_reached']}/{len(results['seeds'])})"
        # the unlearning ratio compares with a BC start; from scratch it means nothing
        unlearning = "n/a" if r["unlearning_ratio"] is None or method == "scratch" else f"{r['unlearning_ratio']:.2f}"
        speed = "1.00x (reference)" if method == "scratch" else r["speedup_text"]
        print(f"{TITLES[method]:<18} {steps:>16} {speed:>22} {unlearning:>11} {r['final_vs_expert']:>13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="Hopper-v5 only, 3 seeds, 200k steps (~45 min on 2 cores)")
    mode.add_argument("--full", action="store_true", help="Hopper-v5, Walker2d-v5, HalfCheetah-v5, 1M steps")
    parser.add_argument("--envs", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=None, help="env steps per run")
    parser.add_argument("--outputs", type=Path, default=DEFAULT_OUTPUTS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    envs = args.envs or (["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5"] if args.full else ["Hopper-v5"])
    budget = args.budget or (1_000_000 if args.full else 200_000)
    all_results = [run_env(env, args.seeds, budget, args.outputs, args.overrides, args.jobs) for env in envs]
    for results in all_results:
        print_table(results)
    first = all_results[0]["methods"]["bc"]
    unlearning = "n/a" if first["unlearning_ratio"] is None else f"{first['unlearning_ratio']:.2f}"
    speedup = "n/a"
    if first["speedup_text"].startswith("inf"):
        speedup = "inf"  # BC alone already reaches 90 % of the expert's return at step 0
    elif first["speedup_vs_scratch"] is not None:
        speedup = f"{'>=' if first['speedup_lower_bound'] else ''}{first['speedup_vs_scratch']:.2f}"
    print(f"speedup={speedup} unlearning={unlearning} final_vs_expert={first['final_vs_expert']:.2f}")


if __name__ == "__main__":
    main()
