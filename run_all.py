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
  python run_all.py --methods bc,bc_rl,scratch,airl,gail,dagger   # + imitation-library baselines
  python run_all.py --env InvertedPendulum-v5 --obs pixels   # camera frames + CnnPolicy
  python run_all.py --env Ant-v5 --source scripted --run-name trot   # demos from the shipped trot gait
  python run_all.py --env Hopper-v5 --source minari --dataset mujoco/hopper --names expert-v0 medium-v0
"""

from __future__ import annotations

import os
from pathlib import Path

from optiq.cli import check_writable, int_arg, make_parser, resolve, run_main, seed_arg
from optiq.compare.report import DEFAULT_METHODS, METHODS, parse_methods
from optiq.pipeline import PipelineOptions, inits_for_methods, normalise_stage, run_pipeline
from optiq.rl.imitation_methods import check_imitation_init


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument(
        "--seeds", type=seed_arg, nargs="+", default=None, help="fine-tuning seeds (default: run.seeds)"
    )
    parser.add_argument(
        "--force",
        nargs="*",
        default=[],
        metavar="STAGE",
        help="redo these stages: demos bc select finetune eval compare (or 01..06)",
    )
    parser.add_argument("--jobs", type=int_arg(1), default=os.cpu_count() or 1, help="fine-tuning runs in parallel")
    parser.add_argument(
        "--expert", type=Path, default=None, help="expert folder (default: the shipped one, else train one)"
    )
    parser.add_argument(
        "--source", choices=["expert", "scripted", "minari"], default="expert", help="demo source of stage 01"
    )
    parser.add_argument("--controller", default=None, help="--source scripted: controller factory, module:function")
    parser.add_argument("--dataset", default=None, help="--source minari: dataset id, or id prefix with --names")
    parser.add_argument("--names", nargs="+", default=None, help="--source minari: dataset names to combine")
    parser.add_argument("--no-video", action="store_true", help="skip video recording")
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated methods to run and compare, from: {','.join(METHODS)} "
        f"(default: {','.join(DEFAULT_METHODS)}); airl, gail, dagger, bc_naive add fine-tuning runs",
    )
    args = parser.parse_args()
    if args.seeds is not None and len(set(args.seeds)) < len(args.seeds):
        parser.error(f"argument --seeds: lists a seed twice ({' '.join(map(str, args.seeds))}); give each seed once")
    methods = parse_methods(args.methods) if args.methods is not None else None
    force = {normalise_stage(s) for s in args.force}
    config, paths = resolve(args)
    algo = args.algo or config["run"]["algo"]
    for init in inits_for_methods(methods or ()):
        check_imitation_init(algo, init, config)
    check_writable(paths.root)
    opts = PipelineOptions(
        algo=algo,
        seeds=args.seeds or [int(s) for s in config["run"]["seeds"]],
        force=force,
        jobs=args.jobs,
        expert=args.expert,
        video=not args.no_video,
        device=args.device,
        progress_bar=not args.no_progress,
        hparams=args.hparams,
        overrides=args.overrides,
        preset=args.preset,
        tracker_args=args,
        obs=args.obs,
        source=args.source,
        controller=args.controller,
        dataset=args.dataset,
        names=args.names,
    )
    if methods is not None:
        opts.methods = methods
        opts.inits = inits_for_methods(methods)
    run_pipeline(config, paths, opts)


if __name__ == "__main__":
    run_main(main)
