"""Stage 01 as the scripts run it: demos from an expert (picked or trained), a scripted
controller or local Minari datasets; optionally exported as a Minari dataset.

Demos go to ``01_demos/`` (shared by every BC seed), or with ``per_seed`` to
``01_demos/seed<N>/``, collected with seed N. Each folder gets a ``fingerprint.json``
(:func:`demos_fingerprint`) once its demos are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.cli import check_writable
from optiq.config import state_config
from optiq.demos.collect import collect_demos, collect_scripted_demos, import_minari_demos
from optiq.demos.expert import expert_files, train_expert
from optiq.demos.storage import DEMOS_FILE, LAYOUT
from optiq.envs import pixel_mode
from optiq.errors import OptiqError
from optiq.paths import RunPaths, shipped_expert
from optiq.records import (
    file_identity,
    make_fingerprint,
    pick_settings,
    remove_fingerprint,
    run_finished,
    write_fingerprint,
)

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
    per_seed: bool = False,
) -> dict[str, Any] | None:
    """Write ``01_demos`` (``01_demos/seed<seed>`` with ``per_seed``) from ``source``; return its metadata
    (None with ``skip_demos``)."""
    out = paths.demos_dir(seed if per_seed else None)
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
        check_writable(out)
        fingerprint = demos_fingerprint(config, seed, source, None, False, controller, dataset, names, n_episodes)
        remove_fingerprint(out)
        if source == "scripted":
            meta = _scripted(config, out, seed, controller, n_episodes)
        else:
            from optiq.demos.minari_io import dataset_ids

            if dataset is None:
                raise OptiqError("--source minari needs --dataset ID, e.g. --dataset mujoco/hopper/expert-v0")
            ids = dataset_ids(dataset, names)
            console.print(f"[bold]Importing Minari[/] {', '.join(ids)}")
            meta = import_minari_demos(config, ids, out, seed, max_episodes=n_episodes)
        write_fingerprint(out, fingerprint)
        _report(meta, out)
        _export(out, config, export_minari, meta)
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
    check_writable(out)
    # An expert trained now is known by its settings (it is retrained on every collection), a given one by its files.
    fingerprint = demos_fingerprint(
        config,
        seed,
        "expert",
        expert,
        train,
        n_episodes=n_episodes,
        expert_algo=expert_algo,
        expert_timesteps=expert_timesteps,
    )
    remove_fingerprint(out)
    n = n_episodes or config["demos"]["n_episodes"]
    console.print(f"[bold]Collecting {n} demo episodes[/] from {expert}")
    meta = collect_demos(config, expert, out, n, seed, device)
    write_fingerprint(out, fingerprint)
    _report(meta, out)
    _export(out, config, export_minari, meta)
    return meta


def demos_fingerprint(
    config: dict[str, Any],
    seed: int,
    source: str = "expert",
    expert: Path | None = None,
    train: bool = False,
    controller: str | None = None,
    dataset: str | None = None,
    names: list[str] | None = None,
    n_episodes: int | None = None,
    expert_algo: str | None = None,
    expert_timesteps: int | None = None,
) -> dict[str, Any]:
    """What a demos folder depends on: env, observation settings, ``demos.n_episodes``, the source
    (the expert's files by sha256, or a trained expert's settings; the scripted controller and its
    parameters; the Minari dataset ids), the seed and the demos file layout."""
    settings: dict[str, Any] = pick_settings(config, ["env_id", "obs"])
    settings.update(source=source, layout=LAYOUT, demos={"n_episodes": n_episodes or config["demos"]["n_episodes"]})
    inputs: dict[str, str | None] = {}
    if source == "expert":
        if train:
            expert_config = state_config(config)
            algo = expert_algo or expert_config["expert"]["algo"]
            settings["trained_expert"] = {
                "expert": expert_config["expert"],
                "algo": algo,
                "timesteps": expert_timesteps,
                "finetune": expert_config["finetune"][algo],
            }
        else:
            expert = expert if expert is not None else shipped_expert(config["env_id"])
            if expert is not None and (Path(expert) / "expert.json").is_file():
                files = expert_files(expert)
                inputs = {
                    "expert": file_identity(files.model),
                    "expert_vecnormalize": file_identity(files.vecnormalize),
                }
    elif source == "scripted":
        scripted = config.get("scripted") or {}
        spec = controller or scripted.get("controller")
        params = dict(scripted.get("params") or {}) if spec == scripted.get("controller") else {}
        settings["scripted"] = {"controller": spec, "params": params}
    else:
        settings["minari"] = {"dataset": dataset, "names": names}
    return make_fingerprint("demos", settings, seed, inputs)


def _scripted(
    config: dict[str, Any], out: Path, seed: int, controller: str | None, n_episodes: int | None
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
    meta = collect_scripted_demos(config, spec, params, out, n, seed)
    console.print(
        f"scripted controller return {meta['expert_return_mean']:.1f} +/- {meta['expert_return_std']:.1f} "
        f"vs random policy {meta['random_return_mean']:.1f}"
        + (f"; {meta['forward_distance_mean']:.1f} m forward per episode" if meta["forward_distance_mean"] else "")
    )
    return meta


def _report(meta: dict[str, Any], out: Path) -> None:
    console.print(
        f"saved {meta['n_episodes']} episodes / {meta['n_transitions']} transitions "
        f"(return {meta['demo_return_mean']:.1f}) -> {out}"
    )


def _export(out: Path, config: dict[str, Any], dataset_id: str | None, meta: dict[str, Any]) -> None:
    """``--export-minari ID``: the demos just written, as a local Minari dataset."""
    if dataset_id is None:
        return
    from optiq.demos.minari_io import export_minari
    from optiq.demos.storage import DEMOS_FILE, load_demos

    target = export_minari(
        load_demos(out / DEMOS_FILE),
        dataset_id,
        config["env_id"],
        algorithm_name=f"optiq {meta['source']}",
        description=f"optiq demos of {config['env_id']} from {meta['description']}",
    )
    console.print(f"exported Minari dataset {dataset_id} -> {target}")


def demos_is_complete(folder: Path) -> bool:
    """Stage 01 is done in ``folder``: its demos file is there and its run finished."""
    return (folder / DEMOS_FILE).is_file() and run_finished(folder / "run.json")
