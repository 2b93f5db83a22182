"""Run the whole pipeline: demos -> BC -> select -> RL fine-tuning -> eval/video -> compare.

With no arguments: Hopper-v5, preset quick (3 seeds; about 12 minutes on 2 CPU cores),
using the shipped Hopper-v5 expert. Each seed N trains its own BC (02_bc/seed<N>/, on the
shared demos, or on its own with --demos-per-seed) and fine-tunes from it, so the BC-only row
and BC -> RL's interval carry BC's seed-to-seed variance.

Outputs are reused only while they are current: each stage's fingerprint.json (the settings
it reads, its seed, its input files' sha256, its code version) must equal what the current
settings give; otherwise it reruns, saying why (e.g. "finetune.ppo.bc_rl.bc_coeff changed
1.0 -> 0.5: rerunning"), and so does everything that reads its outputs. An interrupted run
resumes. --force STAGE redoes a stage and every later one. Outputs go to
outputs/<env>/<run-name>/{01_demos,02_bc,03_select,04_finetune,05_eval,06_compare}/.

Examples:
  python run_all.py
  python run_all.py --env Hopper-v5 --preset full --seeds 0 1 2
  python run_all.py --seeds 3 4 5 --run-name quick-345    # other BC seeds: does the verdict hold?
  python run_all.py --demos-per-seed                      # each seed also collects its own demos
  python run_all.py --env Walker2d-v5 --algo ppo      # trains an expert first
  python run_all.py --force finetune --set finetune.total_timesteps=50000
  python run_all.py --methods bc_only,bc_rl,scratch,airl,gail,dagger   # + imitation-library baselines
  python run_all.py --env InvertedPendulum-v5 --obs pixels   # camera frames + CnnPolicy
  python run_all.py --env Ant-v5 --source scripted --run-name trot   # demos from the shipped trot gait
  python run_all.py --env Hopper-v5 --source minari --dataset mujoco/hopper --names expert-v0 medium-v0
"""

from __future__ import annotations

from pathlib import Path

from optiq.cli import check_writable, int_arg, make_parser, resolve, run_main, seed_arg
from optiq.compare.methods import DEFAULT_METHODS, METHODS, parse_methods
from optiq.pipeline import PipelineOptions, inits_for_methods, normalise_stage, run_pipeline
from optiq.rl.imitation_methods import check_imitation_init
from optiq.seeding import available_cores


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument(
        "--seeds",
        type=seed_arg,
        nargs="+",
        default=None,
        help="seeds (default: run.seeds): each trains its own BC and fine-tunes BC -> RL from it, and scratch",
    )
    parser.add_argument(
        "--demos-per-seed",
        action="store_true",
        help="each seed collects its own demos (01_demos/seed<N>/) with its seed, instead of sharing 01_demos/",
    )
    parser.add_argument(
        "--demos-seed", type=seed_arg, default=0, help="seed of the shared demos (without --demos-per-seed)"
    )
    parser.add_argument(
        "--force",
        nargs="*",
        default=[],
        metavar="STAGE",
        help="redo these stages and every later one: demos bc select finetune eval compare (or 01..06)",
    )
    parser.add_argument(
        "--jobs",
        type=int_arg(1),
        default=available_cores(),
        help="BC seeds and fine-tuning runs trained in parallel (each with its share of the cores as torch threads)",
    )
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
    args = parser.parse_args(argv)
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
        demos_per_seed=args.demos_per_seed,
        demos_seed=args.demos_seed,
    )
    if methods is not None:
        opts.methods = methods
        opts.inits = inits_for_methods(methods)
    run_pipeline(config, paths, opts)


if __name__ == "__main__":
    run_main(main)
