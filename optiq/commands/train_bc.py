"""Stage 02: behavioural cloning on the demos of stage 01.

Trains imitation's bc.BC on a train/val split of outputs/<env>/<run>/01_demos/demos.npz.
The policy has exactly the architecture and observation normalisation of the RL policy
that stage 04 builds (--algo), so its weights transfer without loss.

BC seeds: --seed N trains BC seed N into 02_bc/seed<N>/ (on 01_demos/seed<N>/ if there are
per-seed demos); fine-tuning seed N then starts from it (run_all.py trains one per seed).
--seeds A B C trains several, one after the other. Without either: the single BC of 02_bc/
(seed 0), which every fine-tuning seed shares where there are no per-seed BCs.

Writes metrics.csv (epoch,train_loss,val_loss,val_nll,val_mse,train_mse), checkpoints every
bc.checkpoint_every epochs, TensorBoard logs, run.json and fingerprint.json (the settings,
seed and demos it was trained with). Rerunning the same command resumes from the last
checkpoint (a larger --epochs continues training); checkpoints trained with other settings
are refused with a one-line error: --restart starts over.
"""

from __future__ import annotations

import argparse

from optiq.bc.pipeline import train_bc_stage
from optiq.cli import make_parser, resolve, run_main, seed_arg, setting_arg
from optiq.stage_options import TrainBCOptions


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--algo", choices=["ppo", "sac"], default=None, help="RL algorithm whose policy BC trains (default: run.algo)"
    )
    parser.add_argument(
        "--epochs", type=setting_arg("bc.n_epochs"), default=None, help="BC epochs (default: bc.n_epochs)"
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed", type=seed_arg, default=None, help="BC seed N (split, init, shuffling) -> 02_bc/seed<N>/"
    )
    seeds.add_argument("--seeds", type=seed_arg, nargs="+", default=None, help="train these BC seeds in turn")
    parser.add_argument("--restart", action="store_true", help="delete earlier BC checkpoints and start over")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config, paths = resolve(args)
    options = TrainBCOptions.from_args(args)
    for seed in options.seed_list():
        train_bc_stage(
            config,
            paths,
            seed=seed,
            algo=options.algo or config["run"]["algo"],
            n_epochs=options.epochs,
            restart=options.restart,
            device=args.device,
            progress_bar=not args.no_progress,
            tracker_args=args,
            per_seed=options.per_seed,
        )


if __name__ == "__main__":
    run_main(main)
