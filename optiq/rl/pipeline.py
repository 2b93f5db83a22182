"""Stage 04 as the scripts run it.

A run from BC (``--init bc``/``bc_naive``) with seed N starts from BC seed N
(``03_select/seed<N>/best.json``, or the single BC of ``03_select/`` where there are no
per-seed BCs; see optiq.paths) and uses seed N's demos. Before training,
:func:`finetune_stage` writes the run's ``fingerprint.json`` (:func:`finetune_fingerprint`)
and refuses to resume a run whose stored fingerprint differs (``restart`` starts it over).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.atomic_io import read_json, remove_outputs
from optiq.cli import check_writable
from optiq.demos.storage import DEMOS_FILE
from optiq.errors import OptiqError
from optiq.paths import RunPaths
from optiq.policies import PolicyFiles
from optiq.records import (
    FINGERPRINT_FILE,
    file_identity,
    make_fingerprint,
    pick_settings,
    read_fingerprint,
    stale_reason,
    write_fingerprint,
)
from optiq.rl.finetune import BootstrapOptions, finetune, read_best_bc, start_checkpoint
from optiq.rl.imitation_methods import check_imitation_init, required_timesteps
from optiq.rl.inits import IMITATION_INITS, INVERSE_RL_INITS
from optiq.rl.training import refuse_shrunk_budget
from optiq.settings import configured
from optiq.tracking import log_metrics, tracking

console = Console()


def resolve_init(init: str | None, pretrained: Path | None) -> str:
    """``--pretrained`` implies ``--init pretrained``; otherwise the default start is BC."""
    if pretrained is not None:
        if init not in (None, "pretrained"):
            raise OptiqError(f"--pretrained and --init {init} contradict each other (drop one)")
        return "pretrained"
    if init == "pretrained":
        raise OptiqError("--init pretrained needs --pretrained PATH")
    return init or "bc"


def bootstrap_options(
    pretrained: Path | None,
    adapter_mode: str,
    torchscript_in_dim: int | None,
    adapter_hidden: str,
    feature_pool: str,
    obs_key: str | None,
) -> BootstrapOptions | None:
    if pretrained is None:
        return None
    try:
        hidden = [int(x) for x in adapter_hidden.split(",") if x.strip()] if adapter_hidden else []
    except ValueError:
        raise OptiqError(f"bad --adapter-hidden '{adapter_hidden}': expected sizes like 256,128") from None
    return BootstrapOptions(Path(pretrained), adapter_mode, torchscript_in_dim, hidden, feature_pool, obs_key)


BC_INITS = ("bc", "bc_naive")
# What a run writes; any of them means there is a run to resume (or to refuse).
RUN_OUTPUTS = [
    "checkpoints",
    "eval.csv",
    "tb",
    "summary.json",
    "copy_report.json",
    "adapters.pt",
    "bootstrap_report.json",
    "best.json",
    "best_model.zip",
    "best_vecnormalize.pkl",
]


def uses_demos(init: str, bc_steps: int = 0) -> bool:
    return init in ("bc", *IMITATION_INITS, *INVERSE_RL_INITS) or bc_steps > 0


def bc_start(paths: RunPaths, seed: int) -> PolicyFiles:
    """The selected BC checkpoint that seed ``seed`` fine-tunes from (its own BC seed, or the single BC)."""
    return read_best_bc(paths.select_for(seed))


def finetune_fingerprint(
    config: dict[str, Any],
    algo: str,
    init: str,
    seed: int,
    total_timesteps: int | None = None,
    bc_files: PolicyFiles | None = None,
    demos_path: Path | None = None,
    bootstrap: BootstrapOptions | None = None,
    bc_steps: int = 0,
    bc_batch_size: int = 256,
) -> dict[str, Any]:
    """What a fine-tuning run depends on: env and observation settings, the budget,
    ``finetune.<algo>`` (with ``bc_rl`` only for ``--init bc``), the evaluation schedule
    (``eval.eval_freq``, ``eval.n_eval_episodes``), the ``imitation`` section for AIRL/GAIL/DAgger,
    the seed, and by sha256 the BC checkpoint it starts from, the demos it reads and a pretrained
    encoder."""
    keys = ["env_id", "obs", f"finetune.{algo}", "eval.eval_freq", "eval.n_eval_episodes"]
    if configured(config, "eval.paired_episodes"):  # only when on: unpaired runs keep their fingerprints
        keys.append("eval.paired_episodes")
    if init in IMITATION_INITS or init in INVERSE_RL_INITS:
        keys.append("imitation")
    settings = pick_settings(config, keys)
    if init != "bc":
        settings["finetune"][algo].pop("bc_rl", None)
    settings["finetune"]["total_timesteps"] = int(total_timesteps or config["finetune"]["total_timesteps"])
    settings.update(algo=algo, init=init)
    if bc_steps > 0:
        settings["bc_warmup"] = {"steps": bc_steps, "batch_size": bc_batch_size}
    inputs: dict[str, str | None] = {}
    if bc_files is not None:
        inputs.update(bc_model=file_identity(bc_files.model), bc_vecnormalize=file_identity(bc_files.vecnormalize))
    if demos_path is not None:
        inputs["demos"] = file_identity(demos_path)
    if bootstrap is not None:
        settings["bootstrap"] = {k: v for k, v in bootstrap.to_json().items() if k != "pretrained"}
        inputs["pretrained"] = file_identity(bootstrap.pretrained)
    return make_fingerprint("finetune", settings, seed, inputs)


def has_run_outputs(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in RUN_OUTPUTS)


def finetune_stage(
    config: dict[str, Any],
    paths: RunPaths,
    algo: str,
    init: str,
    seed: int,
    restart: bool = False,
    tracker_args: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Stage 04 for one (algo, init, seed) under ``paths``; ``options`` are :func:`finetune`'s keywords."""
    run_dir = paths.finetune(algo, init, seed)
    bc_files = None
    if init in BC_INITS:
        select_dir = paths.select_for(seed)
        bc_files = read_best_bc(select_dir)
        if select_dir == paths.select:
            console.print(f"from the single BC of {select_dir / 'best.json'} (no per-seed BCs in {paths.select})")
    check_imitation_init(
        algo,
        init,
        config,
        resume=options.get("resume_from"),
        pretrained=options.get("bootstrap"),
        bc_steps=options.get("bc_steps"),
        record_video=options.get("video_every"),
        state_dict_out=options.get("state_dict_out"),
    )
    if uses_demos(init, options.get("bc_steps", 0)):
        options["demos_path"] = paths.demos_for(seed) / DEMOS_FILE
    check_writable(run_dir)
    fingerprint = finetune_fingerprint(
        config,
        algo,
        init,
        seed,
        options.get("total_timesteps"),
        bc_files,
        options.get("demos_path"),
        options.get("bootstrap"),
        options.get("bc_steps", 0),
        options.get("bc_batch_size", 256),
    )
    if not restart and options.get("resume_from") is None and has_run_outputs(run_dir):
        stored = read_fingerprint(run_dir)
        if stored is None:  # outputs of an optiq that wrote no fingerprints (run_all redoes them)
            console.print(
                f"[yellow]warning: {run_dir} has no {FINGERPRINT_FILE} (written by an older optiq), so its settings "
                "cannot be checked: resuming it as it is (--restart starts over)[/]"
            )
        elif reason := stale_reason(stored, fingerprint):
            raise OptiqError(
                f"{run_dir} holds a run with other settings: {reason}; pass --restart to start it over "
                "(run_all.py does so by itself)"
            )
    if restart:  # run.json too: a restarted run must not be judged by the record of the one it replaces
        remove_outputs(run_dir, [*RUN_OUTPUTS, FINGERPRINT_FILE, "run.json"])
    elif init not in IMITATION_INITS:
        # Before the fingerprint is written: a refused resume leaves the finished run as it was.
        budget = int(options.get("total_timesteps") or config["finetune"]["total_timesteps"])
        refuse_shrunk_budget(run_dir, start_checkpoint(run_dir, options.get("resume_from")), budget)
    write_fingerprint(run_dir, fingerprint)  # before training: checkpoints of an interrupted run carry it
    console.print(f"[bold]{algo.upper()} from {init}[/] (seed {seed}) -> {run_dir}")
    group = f"{config['env_id']}/{paths.run_name}"
    with tracking(tracker_args, config, run_dir, "finetune", f"{config['env_id']}-{run_dir.name}", group) as run:
        summary = finetune(config, run_dir, algo, init, seed, bc_files, **options)
        log_metrics(run, {"final_return": summary["final_return"] or 0.0})
    u = summary["unlearning"]
    ratio = f"{u['unlearning_ratio']:.2f}" if u.get("unlearning_ratio") is not None else "n/a"
    console.print(f"final return {summary['final_return']:.1f}; unlearning ratio {ratio}")
    return summary


def finetune_is_complete(run_dir: Path, config: dict[str, Any], init: str) -> bool:
    """Stage 04 is done in ``run_dir``: its summary.json reports the whole budget of ``init``."""
    summary = run_dir / "summary.json"
    try:
        return summary.is_file() and read_json(summary)["total_timesteps"] >= required_timesteps(config, init)
    except (OSError, ValueError, KeyError):
        return False
