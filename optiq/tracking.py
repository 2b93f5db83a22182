"""Experiment tracking with Weights & Biases, off unless ``--wandb`` is given.

With ``--wandb`` the run is logged offline by default (``WANDB_MODE=offline``, synced later
with ``wandb sync``); set ``WANDB_MODE=online`` to stream. TensorBoard logs are synced, and
the resolved settings are the run's config. A missing or failing wandb never stops training:
it becomes a warning.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optiq.extras import MissingExtraError, require


def add_tracking_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tracking (Weights & Biases; TensorBoard logs are always written)")
    group.add_argument("--wandb", action="store_true", help="log to wandb (offline unless WANDB_MODE=online)")
    group.add_argument("--wandb-project", default=os.environ.get("WANDB_PROJECT", "optiq"), help="wandb project")
    group.add_argument(
        "--wandb-entity", default=os.environ.get("WANDB_ENTITY") or None, help="wandb entity (team/user)"
    )
    group.add_argument("--wandb-group", default=None, help="wandb group (default: <env>/<run-name>)")
    group.add_argument("--wandb-tags", nargs="*", default=[], help="wandb tags")


def tracking_flags(args: argparse.Namespace) -> list[str]:
    """The tracking flags to pass on to a child stage process."""
    if not getattr(args, "wandb", False):
        return []
    flags = ["--wandb", "--wandb-project", args.wandb_project]
    if args.wandb_entity:
        flags += ["--wandb-entity", args.wandb_entity]
    if args.wandb_group:
        flags += ["--wandb-group", args.wandb_group]
    if args.wandb_tags:
        flags += ["--wandb-tags", *args.wandb_tags]
    return flags


@contextlib.contextmanager
def tracking(
    args: argparse.Namespace | None,
    config: dict[str, Any],
    run_dir: Path,
    stage: str,
    name: str,
    group: str | None = None,
) -> Iterator[Any]:
    """Yield a wandb run (or None when tracking is off or unavailable); finish it afterwards."""
    if args is None or not getattr(args, "wandb", False):
        yield None
        return
    try:
        wandb = require("wandb", "--wandb")
    except MissingExtraError as exc:
        warnings.warn(f"{exc}; continuing without it", stacklevel=3)
        yield None
        return
    run = None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=args.wandb_project,
            entity=args.wandb_entity,
            group=args.wandb_group or group,
            tags=list(args.wandb_tags),
            name=name,
            job_type=stage,
            config=config,
            dir=str(run_dir),
            mode=os.environ.get("WANDB_MODE", "offline"),
            sync_tensorboard=True,
            reinit="finish_previous",
        )
    except Exception as exc:  # network, auth, version problems: tracking is optional
        warnings.warn(f"wandb could not start ({type(exc).__name__}: {exc}); continuing without it", stacklevel=3)
    try:
        yield run
    finally:
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish()


def log_metrics(run: Any, metrics: dict[str, float], step: int | None = None) -> None:
    """Log to an active wandb run; a no-op without one."""
    if run is not None:
        with contextlib.suppress(Exception):
            run.log(metrics, step=step)


def log_scalars(tb_dir: Path, scalars: dict[str, float | None], step: int = 0) -> None:
    """Write scalars at one step to a TensorBoard folder (stages without an SB3 logger)."""
    log_series(tb_dir, [(step, scalars)])


def log_series(tb_dir: Path, rows: list[tuple[int, dict[str, float | None]]]) -> None:
    """Write ``(step, {name: value})`` rows to one TensorBoard event file; None values are skipped."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tb_dir)) as writer:
        for step, scalars in rows:
            for key, value in scalars.items():
                if value is not None:
                    writer.add_scalar(key, float(value), step)
