"""Stage 01 as the scripts run it: pick or train the expert, then collect demos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.cli import check_writable
from optiq.demos.collect import collect_demos
from optiq.demos.expert import expert_files, train_expert
from optiq.errors import OptiqError
from optiq.paths import RunPaths, shipped_expert

console = Console()


def collect_stage(
    config: dict[str, Any],
    paths: RunPaths,
    seed: int,
    expert: Path | None = None,
    train: bool = False,
    expert_algo: str | None = None,
    expert_timesteps: int | None = None,
    expert_out: Path | None = None,
    n_episodes: int | None = None,
    skip_demos: bool = False,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, Any] | None:
    env_id = config["env_id"]
    if expert is not None and train:
        raise OptiqError("give either --expert DIR or --train-expert, not both")
    if train:
        algo = expert_algo or config["expert"]["algo"]
        expert = Path(expert_out) if expert_out else paths.trained_expert(algo, seed)
        check_writable(expert)
        console.print(f"[bold]Training {algo.upper()} expert[/] for {env_id} -> {expert}")
        info = train_expert(config, expert, seed, algo, expert_timesteps, progress_bar=progress_bar, device=device)
        console.print(f"expert return {info['return_mean']:.1f} +/- {info['return_std']:.1f}")
    elif expert is None:
        expert = shipped_expert(env_id)
        if expert is None:
            raise OptiqError(
                f"no expert for {env_id}: pass --expert DIR or --train-expert "
                "(only some envs ship an expert under experts/)"
            )
    expert_files(expert)  # validates the folder before any rollout
    if skip_demos:
        return None
    check_writable(paths.demos)
    n = n_episodes or config["demos"]["n_episodes"]
    console.print(f"[bold]Collecting {n} demo episodes[/] from {expert}")
    meta = collect_demos(config, expert, paths.demos, n, seed, device)
    console.print(
        f"saved {meta['n_episodes']} episodes / {meta['n_transitions']} transitions "
        f"(return {meta['demo_return_mean']:.1f}) -> {paths.demos}"
    )
    return meta
