#!/usr/bin/env python
"""How low does `floor` go for a policy that never changes? The noise floor of the metric.

bench/sample_efficiency.py's ``floor`` is the lowest evaluation after step 0 over the one at
step 0, each the mean of ``--episodes`` deterministic episodes on one evaluation env that keeps
drawing new start states (seeded as stage 04 seeds it: seed + 1000). A fine-tuning run that
kept BC's weights exactly would still score below 1, because each evaluation sees different
episodes. This evaluates each seed's BC (the same demos, BC and checkpoint selection as the
bench's expert regime, reused when already there) ``--evals`` + 1 times on that evaluation env
and reports the floor a frozen BC gets, next to the per-episode spread that causes it.

  python bench/floor_noise.py                          # Hopper-v5, seeds 0-2, 20 evaluations of 10
  python bench/floor_noise.py --outputs outputs/bench_release --seeds 0 1 2   # reuse a bench's BCs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import sample_efficiency as bench  # noqa: E402

from optiq.algos import make_eval_venv  # noqa: E402
from optiq.atomic_io import write_json  # noqa: E402
from optiq.config import DEFAULT_HPARAMS, load_env_config, parse_override  # noqa: E402
from optiq.policies import load_model  # noqa: E402
from optiq.records import git_state, package_versions  # noqa: E402
from optiq.rl.finetune import read_best_bc  # noqa: E402
from optiq.rl.training import evaluate_returns  # noqa: E402


def frozen_bc_evaluations(
    env_id: str, seed: int, outputs: Path, n_evals: int, n_episodes: int, overrides: list[str]
) -> np.ndarray:
    """Per-episode returns, shape (n_evals + 1, n_episodes), of one seed's BC on stage 04's evaluation env."""
    config = load_env_config(env_id, "full", DEFAULT_HPARAMS, dict(parse_override(o) for o in overrides))
    paths = bench.prepare_bc(env_id, "expert", "ppo", seed, outputs, overrides)
    bc_files = read_best_bc(paths.select_for(seed))
    model = load_model(bc_files, "cpu")
    venv = make_eval_venv(config, "ppo", seed + 1000, norm_stats_path=bc_files.vecnormalize)
    return np.stack([evaluate_returns(model, venv, n_episodes)[0] for _ in range(n_evals + 1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--evals", type=int, default=20, help="evaluations after step 0 (200k steps / 10k: 20)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per evaluation (the bench's 10)")
    parser.add_argument("--outputs", type=Path, default=REPO / "outputs" / "bench_floor_noise")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        returns = frozen_bc_evaluations(args.env, seed, args.outputs, args.evals, args.episodes, args.overrides)
        means = returns.mean(axis=1)
        rows.append(
            {
                "seed": seed,
                "step0": float(means[0]),
                "eval_mean": float(means.mean()),
                "eval_min": float(means[1:].min()),
                "floor": float(means[1:].min() / means[0]),
                "floor_vs_mean": float(means[1:].min() / means.mean()),
                "episode_cv": float(returns.std() / returns.mean()),
                "fallen_share": float((returns < 0.5 * np.median(returns)).mean()),
                "evaluations": means.round(1).tolist(),
            }
        )
        r = rows[-1]
        print(
            f"seed {seed}: step-0 {r['step0']:.0f}, mean of {args.evals + 1} evaluations {r['eval_mean']:.0f}, "
            f"lowest {r['eval_min']:.0f}: floor {r['floor']:.2f} (x the mean: {r['floor_vs_mean']:.2f}); "
            f"per-episode CV {r['episode_cv']:.2f}, episodes under half the median {r['fallen_share']:.0%}",
            flush=True,
        )
    floors = [r["floor"] for r in rows]
    out = args.outputs / f"floor_noise_{args.env}.json"
    write_json(
        out,
        {
            "command": " ".join(sys.argv),
            "git": git_state(),
            "versions": package_versions(),
            "episodes": args.episodes,
            "evals": args.evals,
            "seeds": rows,
        },
    )
    print(f"wrote {out}")
    print(f"frozen BC: floor median={np.median(floors):.2f} min={min(floors):.2f} (target 0.9 on every seed)")


if __name__ == "__main__":
    main()
