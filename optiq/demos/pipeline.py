"""Stage 01 as the scripts run it: demos from an expert (picked or trained), a scripted
controller or local Minari datasets; optionally exported as a Minari dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.cli import check_writable
from optiq.demos.collect import collect_demos, collect_scripted_demos, import_minari_demos
from optiq.demos.expert import expert_files, train_expert
from optiq.envs import pixel_mode
from optiq.errors import OptiqError
from optiq.paths import RunPaths, shipped_expert

console = Console()
SOURCES = ("expert", "scripted", "minari")


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
    source: str = "expert",
    controller: str | None = None,
    dataset: str | None = None,
    names: list[str] | None = None,
    export_minari: str | None = None,
) -> dict[str, Any] | None:
    """Write ``01_demos`` from ``source``; return its metadata (None with ``skip_demos``)."""
    if source not in SOURCES:
        raise OptiqError(f"unknown demo source '{source}'; choose one of: {', '.join(SOURCES)}")
    if export_minari is not None and not skip_demos:
        from optiq.demos.minari_io import check_new_dataset_id

        check_new_dataset_id(export_minari)
    if source != "expert":
        if expert is not None or train:
            raise OptiqError(f"--expert/--train-expert only apply to --source expert, not --source {source}")
        if source == "scripted" and (dataset is not None or names):
            raise OptiqError("--dataset/--names only apply to --source minari, not --source scripted")
        if source == "minari" and controller is not None:
            raise OptiqError("--controller only applies to --source scripted, not --source minari")
        if source == "minari" and pixel_mode(config):
            raise OptiqError(
                "Minari datasets hold state observations; use --source expert or scripted with --obs pixels"
            )
        check_writable(paths.demos)
        if source == "scripted":
            meta = _scripted(config, paths, seed, controller, n_episodes)
        else:
            from optiq.demos.minari_io import dataset_ids

            if dataset is None:
                raise OptiqError("--source minari needs --dataset ID, e.g. --dataset mujoco/hopper/expert-v0")
            ids = dataset_ids(dataset, names)
            console.print(f"[bold]Importing Minari[/] {', '.join(ids)}")
            meta = import_minari_demos(config, ids, paths.demos, seed, max_episodes=n_episodes)
        _report(meta, paths)
        _export(paths, config, export_minari, meta)
        return meta
    if dataset is not None or names or controller is not None:
        raise OptiqError("--dataset/--names/--controller need --source minari or --source scripted")
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
    _report(meta, paths)
    _export(paths, config, export_minari, meta)
    return meta


def _scripted(
    config: dict[str, Any], paths: RunPaths, seed: int, controller: str | None, n_episodes: int | None
) -> dict[str, Any]:
    settings = config.get("scripted") or {}
    spec = controller or settings.get("controller")
    if spec is None:
        raise OptiqError(
            f"no scripted controller for {config['env_id']}: pass --controller module:function "
            "or add a 'scripted' section to hparams.yml (see Ant-v5)"
        )
    # The env's params belong to its own controller; another controller starts from its defaults.
    params = dict(settings.get("params") or {}) if spec == settings.get("controller") else {}
    n = n_episodes or config["demos"]["n_episodes"]
    console.print(f"[bold]Recording {n} episodes[/] of scripted controller {spec}")
    meta = collect_scripted_demos(config, spec, params, paths.demos, n, seed)
    console.print(
        f"scripted controller return {meta['expert_return_mean']:.1f} +/- {meta['expert_return_std']:.1f} "
        f"vs random policy {meta['random_return_mean']:.1f}"
        + (f"; {meta['forward_distance_mean']:.1f} m forward per episode" if meta["forward_distance_mean"] else "")
    )
    return meta


def _report(meta: dict[str, Any], paths: RunPaths) -> None:
    console.print(
        f"saved {meta['n_episodes']} episodes / {meta['n_transitions']} transitions "
        f"(return {meta['demo_return_mean']:.1f}) -> {paths.demos}"
    )


def _export(paths: RunPaths, config: dict[str, Any], dataset_id: str | None, meta: dict[str, Any]) -> None:
    """``--export-minari ID``: the demos just written, as a local Minari dataset."""
    if dataset_id is None:
        return
    from optiq.demos.minari_io import export_minari
    from optiq.demos.storage import DEMOS_FILE, load_demos

    target = export_minari(
        load_demos(paths.demos / DEMOS_FILE),
        dataset_id,
        config["env_id"],
        algorithm_name=f"optiq {meta['source']}",
        description=f"optiq demos of {config['env_id']} from {meta['description']}",
    )
    console.print(f"exported Minari dataset {dataset_id} -> {target}")
