"""Stages 02 and 03 as the scripts run them.

BC seeds: with ``per_seed`` seed N trains its BC in ``02_bc/seed<N>/`` (on its own demos
``01_demos/seed<N>/`` if those exist, else the shared ``01_demos/``) and selects its
checkpoint in ``03_select/seed<N>/``; without it, the single BC of ``02_bc/`` and
``03_select/`` (see optiq.paths). Each folder gets a ``fingerprint.json``
(:func:`bc_fingerprint`, :func:`select_fingerprint`): stage 02 writes it before training
and refuses to resume checkpoints whose fingerprint differs (``restart`` starts over);
stage 03 writes it with ``best.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.atomic_io import read_json, remove_outputs
from optiq.bc.select import select_best_checkpoint
from optiq.bc.train import CHECKPOINTS_JSON, train_bc
from optiq.cli import check_writable
from optiq.demos.storage import DEMOS_FILE
from optiq.errors import OptiqError
from optiq.paths import RunPaths, seed_folders
from optiq.records import (
    FINGERPRINT_FILE,
    file_identity,
    make_fingerprint,
    pick_settings,
    read_fingerprint,
    remove_fingerprint,
    run_finished,
    stale_reason,
    write_fingerprint,
)
from optiq.tracking import log_metrics, tracking

console = Console()
# bc.* settings a BC run does not depend on: n_epochs is how far it has got (a rerun with more
# epochs resumes), the select_* settings are stage 03's.
NOT_BC_SETTINGS = ("n_epochs", "select_by", "select_episodes")


def bc_fingerprint(config: dict[str, Any], algo: str, demos_path: Path, seed: int) -> dict[str, Any]:
    """What a BC run depends on: env and observation settings, ``bc.*`` (but ``n_epochs`` and the
    ``select_*`` keys), the RL policy it clones (``finetune.<algo>.policy_kwargs``/``normalize``),
    the demos (sha256) and its seed."""
    keys = ["env_id", "obs", *(f"bc.{key}" for key in config["bc"] if key not in NOT_BC_SETTINGS)]
    settings = pick_settings(config, [*keys, f"finetune.{algo}.policy_kwargs", f"finetune.{algo}.normalize"])
    settings["algo"] = algo
    return make_fingerprint("bc", settings, seed, {"demos": file_identity(demos_path)})


def select_fingerprint(
    config: dict[str, Any], bc_dir: Path, seed: int, criterion: str, n_episodes: int
) -> dict[str, Any]:
    """What a checkpoint selection depends on: the criterion (and its episodes), the BC checkpoints
    (their index, with every checkpoint's losses, by sha256) and the seed of its evaluation episodes."""
    settings = pick_settings(config, ["env_id", "obs"])
    settings["select"] = {"by": criterion, "episodes": n_episodes if criterion == "eval_return" else None}
    return make_fingerprint("select", settings, seed, {"bc_checkpoints": file_identity(bc_dir / CHECKPOINTS_JSON)})


def bc_epochs(bc_dir: Path) -> int:
    """The last epoch with a checkpoint in ``bc_dir`` (0 when there is none)."""
    index = bc_dir / CHECKPOINTS_JSON
    if not index.is_file():
        return 0
    return max((int(c["epoch"]) for c in read_json(index).get("checkpoints", [])), default=0)


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
    per_seed: bool = False,
) -> list[dict[str, Any]]:
    """Stage 02: train (or resume) BC seed ``seed``, in ``02_bc/seed<seed>/`` with ``per_seed``, else ``02_bc/``."""
    bc_dir = paths.bc_dir(seed if per_seed else None)
    demos_dir = paths.demos_for(seed)
    if not (demos_dir / DEMOS_FILE).is_file():
        raise OptiqError(f"no demos at {demos_dir} (run scripts/01_collect_demos.py --env {config['env_id']} first)")
    check_writable(bc_dir)
    n_epochs = int(n_epochs or config["bc"]["n_epochs"])
    fingerprint = bc_fingerprint(config, algo, demos_dir / DEMOS_FILE, seed)
    index = bc_dir / CHECKPOINTS_JSON
    if index.is_file() and not restart:
        if read_json(index).get("algo") != algo:
            console.print(f"earlier BC checkpoints in {bc_dir} trained another algorithm's policy: starting over")
            restart = True
        elif (stored := read_fingerprint(bc_dir)) is None:  # checkpoints of an optiq that wrote no fingerprints
            console.print(
                f"[yellow]warning: {bc_dir} has no {FINGERPRINT_FILE} (written by an older optiq), so its settings "
                "cannot be checked: resuming it as it is (--restart starts over)[/]"
            )
        elif reason := stale_reason(stored, fingerprint):
            raise OptiqError(
                f"the BC checkpoints in {bc_dir} were trained with other settings: {reason}; "
                "pass --restart to train this BC again (run_all.py does so by itself)"
            )
        if not restart and (trained := bc_epochs(bc_dir)) > n_epochs:
            raise OptiqError(
                f"the BC in {bc_dir} already has {trained} epochs, more than the {n_epochs} asked for; "
                f"pass --restart to train {n_epochs} epochs again, or --epochs {trained}"
            )
    if restart:
        remove_outputs(bc_dir, ["checkpoints", CHECKPOINTS_JSON, "metrics.csv", "tb", FINGERPRINT_FILE])
    write_fingerprint(bc_dir, fingerprint)  # before training: checkpoints of an interrupted run carry it
    what = f"BC seed {seed}" if per_seed else "BC"
    console.print(f"[bold]Training {what}[/] ({algo.upper()} policy) on {demos_dir / DEMOS_FILE}")
    name = f"{config['env_id']}-{paths.run_name}-bc" + (f"-seed{seed}" if per_seed else "")
    with tracking(tracker_args, config, bc_dir, "bc", name, group=f"{config['env_id']}/{paths.run_name}") as run:
        checkpoints = train_bc(
            config,
            demos_dir,
            bc_dir,
            seed,
            algo,
            device,
            progress_bar,
            n_epochs,
            on_epoch=lambda row: log_metrics(run, {f"bc/{k}": v for k, v in row.items()}, step=int(row["epoch"])),
        )
    last = checkpoints[-1]
    console.print(f"{what} done: {len(checkpoints)} checkpoints, last val_loss {last['val_loss']:.4f} -> {bc_dir}")
    return checkpoints


def bc_dir_to_select(paths: RunPaths, seed: int, per_seed: bool) -> Path:
    """The BC folder stage 03 selects from; a one-line error where the layouts do not match."""
    if per_seed:
        bc_dir = paths.bc_dir(seed)
        if not (bc_dir / CHECKPOINTS_JSON).is_file():
            single = (
                f": {paths.bc} holds a single BC trained without --seed (select it without --seed)"
                if (paths.bc / CHECKPOINTS_JSON).is_file()
                else ""
            )
            raise OptiqError(
                f"no BC for seed {seed} in {bc_dir}{single} (run scripts/02_train_bc.py --seed {seed} first)"
            )
        return bc_dir
    if not (paths.bc / CHECKPOINTS_JSON).is_file() and (seeds := seed_folders(paths.bc)):
        raise OptiqError(
            f"{paths.bc} holds one BC per seed (seeds {', '.join(map(str, seeds))}): pass --seed N or --seeds to "
            "select theirs"
        )
    return paths.bc


def select_stage(
    config: dict[str, Any],
    paths: RunPaths,
    seed: int,
    criterion: str | None = None,
    n_episodes: int | None = None,
    device: str = "auto",
    per_seed: bool = False,
) -> dict[str, Any]:
    """Stage 03 for BC seed ``seed`` (``03_select/seed<seed>/`` with ``per_seed``, else ``03_select/``)."""
    bc_dir = bc_dir_to_select(paths, seed, per_seed)
    out = paths.select_dir(seed if per_seed else None)
    check_writable(out)
    criterion = criterion or config["bc"]["select_by"]
    n_episodes = n_episodes or config["bc"]["select_episodes"]
    fingerprint = select_fingerprint(config, bc_dir, seed, criterion, n_episodes)
    remove_fingerprint(out)
    best = select_best_checkpoint(config, bc_dir, out, criterion, n_episodes, seed, device)
    write_fingerprint(out, fingerprint)
    what = f"Best BC checkpoint of seed {seed}" if per_seed else "Best BC checkpoint"
    console.print(f"[bold]{what}[/]: epoch {best['epoch']} ({best['reason']}) -> {out / 'best.json'}")
    return best


def bc_is_complete(folder: Path, n_epochs: int) -> bool:
    """Stage 02 is done in ``folder``: exactly ``n_epochs`` epochs trained and the run finished."""
    return bc_epochs(folder) == n_epochs and run_finished(folder / "run.json")


def select_is_complete(folder: Path) -> bool:
    """Stage 03 is done in ``folder``: best.json written and the run finished."""
    return (folder / "best.json").is_file() and run_finished(folder / "run.json")
