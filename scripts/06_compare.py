#!/usr/bin/env python
"""Stage 06: compare BC only vs BC -> RL vs RL from scratch.

Reads 01_demos/metadata.json (expert return), 04_finetune/<algo>_{bc,scratch}_seed*/eval.csv
(learning curves) and 05_eval/*/eval.json (final returns), aggregates over the seeds that
were run, and writes 06_compare/: learning_curves.png (with BC-only and expert reference
lines), results.csv, results.md (verdict first) and results.json: final return, return
at 25/50/100 % of the budget, env steps to reach 90 % of expert return, speedup of
BC -> RL over scratch, unlearning ratio.
"""

from __future__ import annotations

from optiq.cli import make_parser, resolve, run_main
from optiq.compare.pipeline import compare_stage


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--algo", choices=["ppo", "sac"], default=None, help="which fine-tuning runs (default: run.algo)"
    )
    args = parser.parse_args()
    config, paths = resolve(args)
    compare_stage(config, paths, args.algo or config["run"]["algo"])


if __name__ == "__main__":
    run_main(main)
