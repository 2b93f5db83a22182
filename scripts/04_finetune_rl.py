#!/usr/bin/env python
"""Stage 04: RL fine-tuning from the best BC checkpoint (--init bc) or from scratch.

Both use the env's tuned PPO/SAC settings from hparams.yml. From BC, the policy weights
of 03_select/best.json are copied into the SB3 policy and the copy report (which layers
copied, which random) is printed and saved to copy_report.json and TensorBoard.
Writes 04_finetune/<algo>_<init>_seed<N>/: eval.csv (timesteps, return mean/std: the
learning curve), checkpoints/, tb/, final_model.zip, summary.json (with the unlearning
report), run.json. Rerunning the same command resumes from the last checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from optiq.cli import make_parser, resolve, run_main
from optiq.rl.pipeline import EXTENSION_FLAGS, apply_extension_flags, finetune_stage


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument(
        "--init",
        choices=["bc", "bc_naive", "scratch"],
        default="bc",
        help="bc: BC weights + the BC-preserving extensions of finetune.<algo>.bc_rl; "
        "bc_naive: BC weights + stock PPO/SAC; scratch: random weights",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--total-steps", type=int, default=None, help="env steps (default: finetune.total_timesteps)")
    parser.add_argument("--resume", type=Path, default=None, help="resume from this checkpoints/ folder or model zip")
    parser.add_argument("--restart", action="store_true", help="delete this run's checkpoints and start over")
    ext = parser.add_argument_group("BC-preserving extensions (override finetune.<algo>.bc_rl; --init bc only)")
    ext.add_argument("--warm-start-steps", type=int, help="env steps of critic-only training before the actor learns")
    ext.add_argument("--actor-lr-warmup-steps", type=int, help="PPO: env steps over which the actor LR ramps up")
    ext.add_argument("--bc-coeff", type=float, help="PPO: weight of the BC loss on demo batches (lambda0)")
    ext.add_argument("--bc-decay", type=float, help="PPO: per-iteration decay of the BC weight (lambda1)")
    ext.add_argument(
        "--mix-ratio", type=float, help="PPO: share of each minibatch taken from demos (V-trace corrected)"
    )
    ext.add_argument("--rho-bar", type=float, help="PPO: V-trace cap on importance ratios for TD errors/advantages")
    ext.add_argument("--c-bar", type=float, help="PPO: V-trace cap on importance ratios for the trace")
    ext.add_argument("--log-std-subtract", type=float, help="PPO: subtract from the BC policy's log std (less noise)")
    ext.add_argument("--demo-fraction", type=float, help="SAC: share of each replay batch drawn from demos")
    args = parser.parse_args()
    config, paths = resolve(args)
    algo = args.algo or config["run"]["algo"]
    apply_extension_flags(config, algo, {key: getattr(args, flag) for flag, key in EXTENSION_FLAGS.items()})
    finetune_stage(
        config,
        paths,
        algo=algo,
        init=args.init,
        seed=args.seed,
        total_timesteps=args.total_steps,
        resume_from=args.resume,
        restart=args.restart,
        device=args.device,
        progress_bar=not args.no_progress,
        tracker_args=args,
    )


if __name__ == "__main__":
    run_main(main)
