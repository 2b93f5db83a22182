"""Stages 02 and 03 as the scripts run them."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from optiq.atomic_io import read_json, remove_outputs
from optiq.bc.select import select_best_checkpoint
from optiq.bc.train import train_bc
from optiq.cli import check_writable
from optiq.errors import OptiqError
from optiq.paths import RunPaths
from optiq.tracking import log_metrics, tracking

console = Console()


def train_bc_stage(
    config: dict[str, Any],
    paths: RunPaths,
    seed: int,
    algo: str,
    n_epochs: int | None = None,
    restart: bool = False,
    device: str = "auto",
    progress_bar: bool = True,
    tracker_args: Any = None,
) -> list[dict[str, Any]]:
    if not (paths.demos / "demos.npz").is_file():
        raise OptiqError(f"no demos at {paths.demos} (run scripts/01_collect_demos.py --env {config['env_id']} first)")
    check_writable(paths.bc)
    index = paths.bc / "checkpoints.json"
    if index.is_file() and read_json(index).get("algo") != algo:
        console.print(f"earlier BC checkpoints in {paths.bc} trained another algorithm's policy: starting over")
        restart = True
    if restart:
        remove_outputs(paths.bc, ["checkpoints", "checkpoints.json", "metrics.csv", "tb"])
    console.print(f"[bold]Training BC[/] ({algo.upper()} policy) on {paths.demos / 'demos.npz'}")
    name = f"{config['env_id']}-{paths.run_name}-bc"
    with tracking(tracker_args, config, paths.bc, "bc", name, group=f"{config['env_id']}/{paths.run_name}") as run:
        checkpoints = train_bc(
            config,
            paths.demos,
            paths.bc,
            seed,
            algo,
            device,
            progress_bar,
            n_epochs,
            on_epoch=lambda row: log_metrics(run, {f"bc/{k}": v for k, v in row.items()}, step=int(row["epoch"])),
        )
    last = checkpoints[-1]
    console.print(f"BC done: {len(checkpoints)} checkpoints, last val_loss {last['val_loss']:.4f} -> {paths.bc}")
    return checkpoints


def select_stage(
    config: dict[str, Any],
    paths: RunPaths,
    seed: int,
    criterion: str | None = None,
    n_episodes: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    check_writable(paths.select)
    best = select_best_checkpoint(
        config,
        paths.bc,
        paths.select,
        criterion or config["bc"]["select_by"],
        n_episodes or config["bc"]["select_episodes"],
        seed,
        device,
    )
    console.print(
        f"[bold]Best BC checkpoint[/]: epoch {best['epoch']} ({best['reason']}) -> {paths.select / 'best.json'}"
    )
    return best
