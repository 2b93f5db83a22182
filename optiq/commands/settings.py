"""List an env's settings: each key's value (after --preset, --obs and --set), its default where
hparams.yml may leave it out, what it may hold, and what it does (the typed schema, optiq/settings.py).

  optiq settings --env Hopper-v5 --only finetune.ppo.bc_rl
  optiq settings --set finetune.ppo.bc_rl.release_check_steps=10000 --only finetune.ppo.bc_rl.release

SB3's own arguments under finetune.<algo>.hyperparams are listed where the env sets them.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING
from typing import Any

from optiq.cli import make_parser, resolve
from optiq.config import setting_rule
from optiq.settings import FIELDS, configured, default_of, doc_of, rule_of


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):  # as written in YAML
        value = list(value)
    return str(value)


def setting_rows(config: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(key, value, default, must be, what it does) for every typed setting and the SB3 arguments given."""
    rows = []
    for dotted, item in FIELDS.items():
        if dotted.startswith("presets.") or (dotted.startswith("scripted.") and "scripted" not in config):
            continue
        shown = _show(configured(config, dotted))
        default = default_of(item)
        rule = rule_of(item)
        default_shown = "required" if default is MISSING else _show(default)
        rows.append((dotted, shown, default_shown, rule.expect if rule else "", doc_of(item)))
    for algo in ("ppo", "sac"):
        for key, value in sorted(config["finetune"][algo]["hyperparams"].items()):
            dotted = f"finetune.{algo}.hyperparams.{key}"
            rule = setting_rule(dotted)
            rows.append((dotted, _show(value), "SB3's", rule.expect if rule else "", f"SB3 {algo.upper()} argument"))
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--only", default="", metavar="PREFIX", help="only keys that start with PREFIX")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config, _ = resolve(args)
    rows = [row for row in setting_rows(config) if row[0].startswith(args.only)]
    header = ("key", "value", "default", "must be", "what it does")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])


if __name__ == "__main__":
    from optiq.cli import run_main

    run_main(main)
