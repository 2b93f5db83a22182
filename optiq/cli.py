"""Shared command-line plumbing for the commands (optiq.commands: the stage scripts, run_all.py, sweep).

Every command builds its parser from these helpers, resolves settings the same way, and
runs under :func:`run_main`, which turns an :class:`OptiqError` into one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optiq.config import (
    ALGOS,
    DEFAULT_ENV,
    DEFAULT_HPARAMS,
    MAX_SEED,
    OBS_MODES,
    PRESETS,
    load_env_config,
    parse_override,
    setting_rule,
)
from optiq.envs import pixel_mode
from optiq.errors import OptiqError
from optiq.paths import DEFAULT_OUTPUTS, RunPaths
from optiq.settings import setting_doc
from optiq.tracking import add_tracking_args


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (like :func:`run_main`'s errors) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _flag_type(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` whose ValueError becomes argparse's one-line 'argument --flag: ...' error."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def setting_arg(dotted: str) -> Callable[[str], Any]:
    """``type=`` for a flag that overrides the setting ``dotted``: the same range as in hparams.yml.

    The returned callable carries ``.setting = dotted``, so a test can list every flag's setting.
    """
    rule = setting_rule(dotted)
    if rule is None:
        raise KeyError(f"no range for setting '{dotted}' in optiq.config.SETTING_RULES")

    def check(text: str) -> Any:
        try:
            return rule.apply(text)
        except ValueError:
            raise ValueError(f"must be {rule.expect} (like {dotted} in hparams.yml), got {text}") from None

    parse = _flag_type(check)
    parse.setting = dotted  # type: ignore[attr-defined]
    return parse


@dataclass(frozen=True)
class SettingFlag:
    """A dedicated flag that is an alias of ``--set KEY=VALUE`` (``{algo}`` in ``key``: the run's algorithm).

    The flags of a stage are declared once as a tuple of these; :func:`add_setting_flags` makes the
    argparse flags (range checked like hparams.yml) and :func:`resolve` turns the given ones into
    ``--set`` overrides applied after the user's own, so there is one override path.
    """

    flag: str
    key: str
    help: str = ""  # "": the setting's doc in optiq/settings.py
    deprecated: tuple[str, ...] = ()  # old spellings, still accepted for one release with a warning

    def description(self) -> str:
        """``help``, else the doc of the setting (each algorithm's where they differ)."""
        if self.help:
            return self.help
        docs = {algo: setting_doc(self.key.format(algo=algo)) for algo in self.algos}
        if len(set(docs.values())) == 1:
            return next(iter(docs.values()))
        return "; ".join(f"{algo.upper()}: {doc}" for algo, doc in docs.items())

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def algos(self) -> tuple[str, ...]:
        """The algorithms that have this setting (all of them for a key without ``{algo}``)."""
        if "{algo}" not in self.key:
            return ALGOS
        return tuple(algo for algo in ALGOS if setting_rule(self.key.format(algo=algo)) is not None)

    def setting(self, algo: str) -> str:
        """The dotted key this flag sets for ``algo``; a one-line error where ``algo`` has no such setting."""
        if algo not in self.algos:
            key = self.key.format(algo=self.algos[0])
            raise OptiqError(f"{self.flag} sets {key}, which {algo.upper()} does not have (drop it or pass --algo)")
        return self.key.format(algo=algo)


def add_setting_flags(group: argparse.ArgumentParser | argparse._ArgumentGroup, flags: Sequence[SettingFlag]) -> None:
    """Add ``flags`` to ``group``, each checked with the range of its setting and saying which ``--set`` it is."""
    for flag in flags:
        example = flag.key.format(algo=flag.algos[0])
        only = f"; {'/'.join(a.upper() for a in flag.algos)} only" if len(flag.algos) < len(ALGOS) else ""
        group.add_argument(
            flag.flag,
            dest=flag.dest,
            type=setting_arg(example),
            default=argparse.SUPPRESS,  # absent from args unless given: the setting keeps its value
            help=f"{flag.description()} (--set {flag.key.replace('{algo}', '<algo>')}{only}; default: that setting)",
        )
        for old in flag.deprecated:
            group.add_argument(
                old,
                dest=_deprecated_dest(old),
                type=setting_arg(example),
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )


def _deprecated_dest(old: str) -> str:
    return "deprecated__" + old.lstrip("-").replace("-", "_")


def _take_deprecated(args: argparse.Namespace, flags: Sequence[SettingFlag]) -> None:
    """Move a deprecated spelling's value to its flag's dest, with a warning (both given: a one-line error)."""
    for flag in flags:
        for old in flag.deprecated:
            if not hasattr(args, _deprecated_dest(old)):
                continue
            if hasattr(args, flag.dest):
                raise OptiqError(f"{old} and {flag.flag} are the same setting; pass only {flag.flag}")
            print(f"warning: {old} is deprecated and goes in the next release; use {flag.flag}", file=sys.stderr)
            setattr(args, flag.dest, getattr(args, _deprecated_dest(old)))
            delattr(args, _deprecated_dest(old))


def int_arg(low: int, high: int | None = None) -> Callable[[str], int]:
    """``type=`` for an integer flag in ``[low, high]``."""
    expect = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be {expect}, got {text}") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {expect}, got {value}")
        return value

    return _flag_type(check)


seed_arg = int_arg(0, MAX_SEED)

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def check_device(text: str) -> str:
    """``--device``: auto, cpu, cuda, cuda:N or mps, and only a device this machine has (never a silent CPU run)."""
    device = text.strip().lower()
    match = re.fullmatch(r"(auto|cpu|mps|cuda)(?::(\d+))?", device)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"unknown device {text!r}; choose one of: {DEVICE_CHOICES}")
    if device in ("auto", "cpu"):
        return device
    import torch

    if match.group(1) == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("mps is not available on this machine; use --device cpu or auto")
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"{device}: no CUDA GPU is visible; use --device cpu or auto")
    count = torch.cuda.device_count()
    if match.group(2) is not None and int(match.group(2)) >= count:
        raise ValueError(
            f"{device}: only {count} CUDA GPU(s) visible (cuda:0..cuda:{count - 1}); use one of those, cpu or auto"
        )
    return device


device_arg = _flag_type(check_device)


def make_parser(description: str) -> argparse.ArgumentParser:
    parser = ArgumentParser(description=description, formatter_class=HelpFormatter)
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
    group.add_argument(
        "--device",
        type=device_arg,
        default="auto",
        help=f"torch device: {DEVICE_CHOICES} (cuda and mps only where available)",
    )
    group.add_argument("--no-progress", action="store_true", help="hide progress bars (e.g. in CI logs)")
    add_tracking_args(parser)
    return parser


def resolve(args: argparse.Namespace, setting_flags: Sequence[SettingFlag] = ()) -> tuple[dict[str, Any], RunPaths]:
    """Load the env's settings (preset, --set overrides, then the given ``setting_flags``) and the run's folders.

    A dedicated flag is the ``--set`` of its key, applied after the user's ``--set`` (so the flag wins).
    """
    overrides = dict(parse_override(text) for text in args.overrides)
    _take_deprecated(args, setting_flags)
    given = [(flag, getattr(args, flag.dest)) for flag in setting_flags if hasattr(args, flag.dest)]
    if any("{algo}" in flag.key for flag, _ in given):
        algo = getattr(args, "algo", None)
        if algo is None:  # run.algo, as the layers below --set the flags join resolve it
            algo = load_env_config(args.env, args.preset, args.hparams, overrides, obs_mode=args.obs)["run"]["algo"]
    for flag, value in given:
        overrides[flag.setting(algo) if "{algo}" in flag.key else flag.key] = value
    config = load_env_config(args.env, args.preset, args.hparams, overrides, obs_mode=args.obs)
    default_name = f"{args.preset}-pixels" if pixel_mode(config) else args.preset
    paths = RunPaths(Path(args.outputs), args.env, args.run_name or default_name)
    return config, paths


def check_writable(folder: Path) -> None:
    """Fail early, before any work, if outputs cannot be written under ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A probe of its own: evaluations running side by side check the same folder at once.
        with tempfile.TemporaryFile(dir=folder, prefix=".optiq-write-test-") as probe:
            probe.write(b"ok")
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
