"""Stage 05: evaluate BC-only and every fine-tuned policy, and record videos.

Each policy is run for --episodes deterministic episodes (default eval.final_episodes)
on seeds that training never used; 05_eval/<label>/eval.json holds the return
mean/std, episode lengths and every episode's return, and video.mp4 a headless recording
(MUJOCO_GL=egl, falling back to osmesa; skipped with a warning if neither works).
Labels: bc_only_seed<N> for each BC seed (bc_only for the single BC of a run without
per-seed BCs), and <algo>_<init>_seed<N> for each run of stage 04.
"""

from __future__ import annotations

import argparse

from optiq.cli import make_parser, resolve, run_main, seed_arg, setting_arg
from optiq.evaluation.pipeline import eval_stage
from optiq.stage_options import EvalOptions


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--only", nargs="*", default=None, metavar="LABEL", help="evaluate only these policies")
    parser.add_argument(
        "--episodes", type=setting_arg("eval.final_episodes"), default=None, help="evaluation episodes per policy"
    )
    parser.add_argument("--seed", type=seed_arg, default=10_000, help="seed of the evaluation episodes")
    parser.add_argument("--no-video", action="store_true", help="skip video recording")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config, paths = resolve(args)
    options = EvalOptions.from_args(args)
    only = list(options.only) if options.only is not None else None
    eval_stage(config, paths, options.seed, only, options.episodes, options.video, args.device)


if __name__ == "__main__":
    run_main(main)
