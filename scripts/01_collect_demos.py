#!/usr/bin/env python
"""Stage 01: collect expert demonstrations.

The expert is, in order: --expert DIR, an expert trained now with --train-expert, or
the expert shipped for the env under experts/<env>/. Demos go to
outputs/<env>/<run-name>/01_demos/ (demos.npz, metadata.json, README.txt, run.json).

Examples:
  python scripts/01_collect_demos.py --env Hopper-v5
  python scripts/01_collect_demos.py --env Walker2d-v5 --train-expert
  python scripts/01_collect_demos.py --env Hopper-v5 --train-expert --expert-out experts/Hopper-v5 --skip-demos
"""

from __future__ import annotations

from pathlib import Path

from optiq.cli import make_parser, resolve, run_main
from optiq.demos.pipeline import collect_stage


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--expert", type=Path, default=None, help="expert folder (expert.zip + expert.json)")
    parser.add_argument("--train-expert", action="store_true", help="train an expert per hparams.yml first")
    parser.add_argument("--expert-algo", choices=["ppo", "sac"], default=None, help="algorithm of a trained expert")
    parser.add_argument("--expert-timesteps", type=int, default=None, help="budget of a trained expert")
    parser.add_argument("--expert-out", type=Path, default=None, help="where a trained expert is saved")
    parser.add_argument("--n-episodes", type=int, default=None, help="demo episodes (default: demos.n_episodes)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for training and rollouts")
    parser.add_argument("--skip-demos", action="store_true", help="only train the expert")
    args = parser.parse_args()
    config, paths = resolve(args)
    collect_stage(
        config,
        paths,
        seed=args.seed,
        expert=args.expert,
        train=args.train_expert,
        expert_algo=args.expert_algo,
        expert_timesteps=args.expert_timesteps,
        expert_out=args.expert_out,
        n_episodes=args.n_episodes,
        skip_demos=args.skip_demos,
        device=args.device,
        progress_bar=not args.no_progress,
    )


if __name__ == "__main__":
    run_main(main)
