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
from optiq.rl.pipeline import finetune_stage


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument("--init", choices=["bc", "scratch"], default="bc", help="start from BC or from random weights")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--total-steps", type=int, default=None, help="env steps (default: finetune.total_timesteps)")
    parser.add_argument("--resume", type=Path, default=None, help="resume from this checkpoints/ folder or model zip")
    parser.add_argument("--restart", action="store_true", help="delete this run's checkpoints and start over")
    args = parser.parse_args()
    config, paths = resolve(args)
    finetune_stage(
        config,
        paths,
        algo=args.algo or config["run"]["algo"],
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
