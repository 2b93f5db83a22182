#!/usr/bin/env python
"""Run the whole pipeline: demos -> BC -> select -> RL fine-tuning -> eval/video -> compare.

With no arguments: Hopper-v5, preset quick (about 7 minutes on 2 CPU cores), using the
shipped Hopper-v5 expert. Stages whose outputs are complete are skipped, so rerunning
resumes an interrupted run; --force STAGE redoes a stage. Outputs go to
outputs/<env>/<run-name>/{01_demos,02_bc,03_select,04_finetune,05_eval,06_compare}/.

Examples:
  python run_all.py
  python run_all.py --env Hopper-v5 --preset full --seeds 0 1 2
  python run_all.py --env Walker2d-v5 --algo ppo      # trains an expert first
  python run_all.py --force finetune --set finetune.total_timesteps=50000
"""

from __future__ import annotations

import os
from pathlib import Path

from optiq.cli import check_writable, make_parser, resolve, run_main
from optiq.pipeline import PipelineOptions, normalise_stage, run_pipeline


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="fine-tuning seeds (default: run.seeds)")
    parser.add_argument(
        "--force",
        nargs="*",
        default=[],
        metavar="STAGE",
        help="redo these stages: demos bc select finetune eval compare (or 01..06)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fine-tuning runs in parallel")
    parser.add_argument(
        "--expert", type=Path, default=None, help="expert folder (default: the shipped one, else train one)"
    )
    parser.add_argument("--no-video", action="store_true", help="skip video recording")
    args = parser.parse_args()
    config, paths = resolve(args)
    check_writable(paths.root)
    opts = PipelineOptions(
        algo=args.algo or config["run"]["algo"],
        seeds=args.seeds or [int(s) for s in config["run"]["seeds"]],
        force={normalise_stage(s) for s in args.force},
        jobs=max(1, args.jobs),
        expert=args.expert,
        video=not args.no_video,
        device=args.device,
        progress_bar=not args.no_progress,
        hparams=args.hparams,
        overrides=args.overrides,
        preset=args.preset,
        tracker_args=args,
    )
    run_pipeline(config, paths, opts)


if __name__ == "__main__":
    run_main(main)
