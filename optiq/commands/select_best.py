"""Stage 03: pick the best BC checkpoint of stage 02 and write 03_select/best.json.

--by val_loss (default, from hparams bc.select_by) picks the lowest held-out BC loss;
--by eval_return evaluates every checkpoint for --episodes episodes and picks the
highest mean return. best.json names the checkpoint and why it won.

--seed N selects BC seed N's checkpoint (02_bc/seed<N>/ -> 03_select/seed<N>/, what run_all.py
does per seed), --seeds A B C several; without either, the single BC of 02_bc/.
"""

from __future__ import annotations

import argparse

from optiq.bc.pipeline import select_stage
from optiq.cli import make_parser, resolve, run_main, seed_arg, setting_arg
from optiq.stage_options import SelectOptions


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--by", choices=["val_loss", "eval_return"], default=None, help="selection criterion")
    parser.add_argument(
        "--episodes",
        type=setting_arg("bc.select_episodes"),
        default=None,
        help="episodes per checkpoint for --by eval_return",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed", type=seed_arg, default=None, help="BC seed N: 02_bc/seed<N>/ (also the seed of evaluation episodes)"
    )
    seeds.add_argument("--seeds", type=seed_arg, nargs="+", default=None, help="select for these BC seeds in turn")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config, paths = resolve(args)
    options = SelectOptions.from_args(args)
    for seed in options.seed_list():
        select_stage(config, paths, seed, options.by, options.episodes, args.device, per_seed=options.per_seed)


if __name__ == "__main__":
    run_main(main)
