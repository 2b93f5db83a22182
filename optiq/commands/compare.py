"""Stage 06: compare BC only vs BC -> RL vs RL from scratch (and more with --methods).

Reads 01_demos/metadata.json (expert return), 04_finetune/<algo>_{bc,scratch}_seed*/eval.csv
(learning curves) and 05_eval/*/eval.json (final returns), aggregates over the seeds that
were run (--seeds: only these), and writes 06_compare/: learning_curves.png (with BC-only and expert reference
lines), results.csv, results.md (verdict first) and results.json: final return, return
at 25/50/100 % of the budget, env steps to reach 90 % of expert return, speedup of
BC -> RL over scratch (env steps to scratch's final return), unlearning ratio. The BC-only row has one score per BC seed
(05_eval/bc_only_seed<N>). --methods adds rows for other stage-04 runs:
bc_naive (BC -> stock RL), airl, gail, dagger (04_finetune_rl.py --init airl|gail|dagger).
"""

from __future__ import annotations

from optiq.cli import make_parser, resolve, run_main, seed_arg
from optiq.compare.methods import DEFAULT_METHODS, METHODS, parse_methods
from optiq.compare.pipeline import compare_stage


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--algo", choices=["ppo", "sac"], default=None, help="which fine-tuning runs (default: run.algo)"
    )
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated rows to compare, from: {','.join(METHODS)} (default: {','.join(DEFAULT_METHODS)}; "
        "each named method must have finished runs)",
    )
    parser.add_argument(
        "--seeds", type=seed_arg, nargs="+", default=None, help="compare only these seeds (default: every seed run)"
    )
    args = parser.parse_args(argv)
    methods = parse_methods(args.methods) if args.methods is not None else None
    config, paths = resolve(args)
    compare_stage(config, paths, args.algo or config["run"]["algo"], methods, args.seeds)


if __name__ == "__main__":
    run_main(main)
