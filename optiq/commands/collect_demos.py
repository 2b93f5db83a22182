"""Stage 01: collect demonstrations.

Sources (--source):
  expert    (default) roll out an expert: --expert DIR, one trained now with
            --train-expert, or the one shipped under experts/<env>/
  scripted  a hand-written controller, --controller module:function (default: the env's
            hparams.yml `scripted` section; Ant-v5 ships an open-loop trot gait)
  minari    local Minari datasets: --dataset ID, or --dataset PREFIX --names A B ... to
            combine several (never downloads; see README "Demonstration sources")
Demos go to outputs/<env>/<run-name>/01_demos/ (demos.npz, metadata.json, README.txt,
run.json, fingerprint.json), shared by every BC seed; with --per-seed to 01_demos/seed<N>/
(N = --seed), the demos BC seed N then trains on (run_all.py --demos-per-seed does this for
each seed). --export-minari ID also writes them as a local Minari dataset.

Examples:
  python scripts/01_collect_demos.py --env Hopper-v5
  python scripts/01_collect_demos.py --env Walker2d-v5 --train-expert
  python scripts/01_collect_demos.py --env Hopper-v5 --train-expert --expert-out experts/Hopper-v5 --skip-demos
  python scripts/01_collect_demos.py --env Ant-v5 --source scripted --run-name trot
  python scripts/01_collect_demos.py --env Hopper-v5 --source minari --dataset mujoco/hopper --names expert-v0 medium-v0
  python scripts/01_collect_demos.py --env Hopper-v5 --export-minari optiq/hopper/expert-v0
  python scripts/01_collect_demos.py --env Hopper-v5 --per-seed --seed 1   # 01_demos/seed1/
"""

from __future__ import annotations

from pathlib import Path

from optiq.cli import make_parser, resolve, run_main, seed_arg, setting_arg
from optiq.demos.pipeline import collect_stage


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--source", choices=["expert", "scripted", "minari"], default="expert", help="demo source")
    parser.add_argument("--controller", default=None, help="scripted controller factory, module:function")
    parser.add_argument("--dataset", default=None, help="Minari dataset id, or id prefix used with --names")
    parser.add_argument("--names", nargs="+", default=None, help="Minari dataset names under --dataset to combine")
    parser.add_argument("--export-minari", default=None, metavar="ID", help="also write the demos as Minari dataset ID")
    parser.add_argument("--expert", type=Path, default=None, help="expert folder (expert.zip + expert.json)")
    parser.add_argument("--train-expert", action="store_true", help="train an expert per hparams.yml first")
    parser.add_argument("--expert-algo", choices=["ppo", "sac"], default=None, help="algorithm of a trained expert")
    parser.add_argument(
        "--expert-timesteps", type=setting_arg("expert.n_timesteps"), default=None, help="budget of a trained expert"
    )
    parser.add_argument("--expert-out", type=Path, default=None, help="where a trained expert is saved")
    parser.add_argument(
        "--n-episodes",
        type=setting_arg("demos.n_episodes"),
        default=None,
        help="demo episodes (default: demos.n_episodes; minari: all, per set)",
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed for training and rollouts")
    parser.add_argument("--skip-demos", action="store_true", help="only train the expert")
    parser.add_argument(
        "--per-seed", action="store_true", help="write 01_demos/seed<N>/ (N = --seed) instead of the shared 01_demos/"
    )
    args = parser.parse_args(argv)
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
        source=args.source,
        controller=args.controller,
        dataset=args.dataset,
        names=args.names,
        export_minari=args.export_minari,
        per_seed=args.per_seed,
    )


if __name__ == "__main__":
    run_main(main)
