"""What a stage job is asked to do, as one object per stage.

A command builds its options with ``from_args`` from the flags it parsed; run_all's launcher
builds the same objects and turns them back into flags with ``to_argv`` for the child process.
One class per stage holds both directions, so the argv run_all writes cannot drift from what
the command parses (tests/test_stage_options.py round-trips each through the real parser).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


def _seed_flags(seed: int | None, seeds: tuple[int, ...] | None) -> list[str]:
    if seeds is not None:
        return ["--seeds", *map(str, seeds)]
    return ["--seed", str(seed)] if seed is not None else []


@dataclass(frozen=True)
class RunSelection:
    """The flags every stage shares (optiq.cli.make_parser): which run, where, with which settings."""

    env: str
    preset: str
    run_name: str | None
    outputs: Path
    hparams: Path
    device: str = "auto"
    obs: str | None = None
    overrides: tuple[str, ...] = ()
    no_progress: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSelection:
        return cls(
            args.env,
            args.preset,
            args.run_name,
            Path(args.outputs),
            Path(args.hparams),
            args.device,
            args.obs,
            tuple(args.overrides),
            args.no_progress,
        )

    def to_argv(self) -> list[str]:
        argv = ["--env", self.env, "--preset", self.preset]
        if self.run_name is not None:
            argv += ["--run-name", self.run_name]
        argv += ["--outputs", str(self.outputs), "--hparams", str(self.hparams), "--device", self.device]
        argv += ["--no-progress"] if self.no_progress else []
        if self.obs is not None:
            argv += ["--obs", self.obs]
        for override in self.overrides:
            argv += ["--set", override]
        return argv


@dataclass(frozen=True)
class TrainBCOptions:
    """Stage 02 (``optiq train-bc``): BC seed N, or several in turn."""

    algo: str | None = None
    seed: int | None = None
    seeds: tuple[int, ...] | None = None
    epochs: int | None = None
    restart: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainBCOptions:
        seeds = tuple(args.seeds) if args.seeds is not None else None
        return cls(args.algo, args.seed, seeds, args.epochs, args.restart)

    @property
    def per_seed(self) -> bool:
        """Per-seed folders (02_bc/seed<N>/) when a seed was named; else the single BC of 02_bc/."""
        return self.seed is not None or self.seeds is not None

    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed if self.seed is not None else 0]

    def to_argv(self) -> list[str]:
        argv = ["--algo", self.algo] if self.algo is not None else []
        argv += ["--epochs", str(self.epochs)] if self.epochs is not None else []
        argv += _seed_flags(self.seed, self.seeds)
        return argv + (["--restart"] if self.restart else [])


@dataclass(frozen=True)
class SelectOptions:
    """Stage 03 (``optiq select-best``): pick seed N's best BC checkpoint."""

    by: str | None = None
    episodes: int | None = None
    seed: int | None = None
    seeds: tuple[int, ...] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SelectOptions:
        seeds = tuple(args.seeds) if args.seeds is not None else None
        return cls(args.by, args.episodes, args.seed, seeds)

    @property
    def per_seed(self) -> bool:
        return self.seed is not None or self.seeds is not None

    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed if self.seed is not None else 0]

    def to_argv(self) -> list[str]:
        argv = ["--by", self.by] if self.by is not None else []
        argv += ["--episodes", str(self.episodes)] if self.episodes is not None else []
        return argv + _seed_flags(self.seed, self.seeds)


@dataclass(frozen=True)
class FinetuneJobOptions:
    """Stage 04 (``optiq finetune``) as run_all launches it: one run of ``--init`` from seed N.

    The command has more flags (pretrained encoders, videos, the setting flags of
    ``optiq.commands.finetune``); run_all passes settings as ``--set`` instead.
    """

    algo: str | None
    init: str | None
    seed: int = 0
    restart: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FinetuneJobOptions:
        return cls(args.algo, args.init, args.seed, args.restart)

    def to_argv(self) -> list[str]:
        argv = ["--algo", self.algo] if self.algo is not None else []
        argv += ["--init", self.init] if self.init is not None else []
        return argv + ["--seed", str(self.seed)] + (["--restart"] if self.restart else [])


@dataclass(frozen=True)
class EvalOptions:
    """Stage 05 (``optiq eval-video``): evaluate (and record) the policies named by ``only`` (None: all)."""

    only: tuple[str, ...] | None = None
    episodes: int | None = None
    seed: int = 10_000
    video: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvalOptions:
        only = tuple(args.only) if args.only is not None else None
        return cls(only, args.episodes, args.seed, not args.no_video)

    def to_argv(self) -> list[str]:
        argv = ["--only", *self.only] if self.only is not None else []
        argv += ["--episodes", str(self.episodes)] if self.episodes is not None else []
        return argv + ["--seed", str(self.seed)] + ([] if self.video else ["--no-video"])
