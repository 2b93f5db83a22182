#!/usr/bin/env python
"""Stage 02: behavioural cloning on the demos of stage 01.

Trains imitation's bc.BC on a train/val split of outputs/<env>/<run>/01_demos/demos.npz.
The policy has exactly the architecture and observation normalisation of the RL policy
that stage 04 builds (--algo), so its weights transfer without loss. Writes
02_bc/metrics.csv (epoch,train_loss,val_loss,val_nll,val_mse,train_mse), checkpoints
every bc.checkpoint_every epochs, TensorBoard logs and run.json. Rerunning the same
command resumes from the last checkpoint; --restart starts over.
"""

from __future__ import annotations

from optiq.bc.pipeline import train_bc_stage
from optiq.cli import make_parser, resolve, run_main, seed_arg, setting_arg


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--algo", choices=["ppo", "sac"], default=None, help="RL algorithm whose policy BC trains (default: run.algo)"
    )
    parser.add_argument(
        "--epochs", type=setting_arg("bc.n_epochs"), default=None, help="BC epochs (default: bc.n_epochs)"
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed (split, init, shuffling)")
    parser.add_argument("--restart", action="store_true", help="delete earlier BC checkpoints and start over")
    args = parser.parse_args()
    config, paths = resolve(args)
    train_bc_stage(
        config,
        paths,
        seed=args.seed,
        algo=args.algo or config["run"]["algo"],
        n_epochs=args.epochs,
        restart=args.restart,
        device=args.device,
        progress_bar=not args.no_progress,
        tracker_args=args,
    )


if __name__ == "__main__":
    run_main(main)
