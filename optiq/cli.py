"""Shared command-line plumbing for the stage scripts and run_all.py.

Every script builds its parser from these helpers, resolves settings the same way, and
runs under :func:`run_main`, which turns an :class:`OptiqError` into one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optiq.config import DEFAULT_ENV, DEFAULT_HPARAMS, OBS_MODES, PRESETS, load_env_config, parse_override
from optiq.envs import pixel_mode
from optiq.errors import OptiqError
from optiq.paths import DEFAULT_OUTPUTS, RunPaths
from optiq.tracking import add_tracking_args


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""


def make_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    group = parser.add_argument_group("run selection (shared by all stages)")
    group.add_argument("--env", default=DEFAULT_ENV, help="Gymnasium env id with a section in hparams.yml")
    group.add_argument("--preset", default="quick", choices=PRESETS, help="budget preset from hparams.yml")
    group.add_argument(
        "--obs",
        choices=OBS_MODES,
        default=None,
        help="observations: state vectors, or stacked camera frames rendered headlessly with a CNN policy "
        "(default: the env's obs.mode in hparams.yml, else state)",
    )
    group.add_argument("--run-name", default=None, help="run folder name (default: <preset>, or <preset>-pixels)")
    group.add_argument("--outputs", type=Path, default=DEFAULT_OUTPUTS, help="root folder of all outputs")
    group.add_argument("--hparams", type=Path, default=DEFAULT_HPARAMS, help="hyperparameters file")
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting with a dotted key, e.g. --set finetune.total_timesteps=20000 (repeatable)",
    )
    group.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    group.add_argument("--no-progress", action="store_true", help="hide progress bars (e.g. in CI logs)")
    add_tracking_args(parser)
    return parser


def resolve(args: argparse.Namespace) -> tuple[dict[str, Any], RunPaths]:
    """Load the env's settings (preset + --set overrides) and the run's folders."""
    overrides = dict(parse_override(text) for text in args.overrides)
    config = load_env_config(args.env, args.preset, args.hparams, overrides, obs_mode=args.obs)
    default_name = f"{args.preset}-pixels" if pixel_mode(config) else args.preset
    paths = RunPaths(Path(args.outputs), args.env, args.run_name or default_name)
    return config, paths


def check_writable(folder: Path) -> None:
    """Fail early, before any work, if outputs cannot be written under ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".optiq-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OptiqError(
            f"output folder {folder} is not writable: {exc.strerror} (pass --outputs DIR you can write to)"
        ) from None


def run_main(main: Callable[[], Any]) -> None:
    """Run a script's main; user errors become one line on stderr and exit code 2."""
    try:
        main()
    except OptiqError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last checkpoint", file=sys.stderr)
        sys.exit(130)
