#!/usr/bin/env python
"""Stage 03: pick the best BC checkpoint of stage 02 and write 03_select/best.json.

--by val_loss (default, from hparams bc.select_by) picks the lowest held-out BC loss;
--by eval_return evaluates every checkpoint for --episodes episodes and picks the
highest mean return. best.json names the checkpoint and why it won.
"""

from __future__ import annotations

from optiq.bc.pipeline import select_stage
from optiq.cli import make_parser, resolve, run_main, seed_arg, setting_arg


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--by", choices=["val_loss", "eval_return"], default=None, help="selection criterion")
    parser.add_argument(
        "--episodes",
        type=setting_arg("bc.select_episodes"),
        default=None,
        help="episodes per checkpoint for --by eval_return",
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the evaluation episodes")
    args = parser.parse_args()
    config, paths = resolve(args)
    select_stage(config, paths, args.seed, args.by, args.episodes, args.device)


if __name__ == "__main__":
    run_main(main)
