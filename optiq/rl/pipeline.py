"""Stage 04 as the scripts run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from optiq.atomic_io import remove_outputs
from optiq.cli import check_writable
from optiq.errors import OptiqError
from optiq.paths import RunPaths
from optiq.rl.finetune import IMITATION_INITS, BootstrapOptions, finetune, read_best_bc
from optiq.rl.imitation_methods import check_imitation_init
from optiq.tracking import log_metrics, tracking

console = Console()

# 04_finetune_rl flag (argparse dest) -> key of finetune.<algo>.bc_rl
EXTENSION_FLAGS = {
    "warm_start_steps": "critic_warmup_steps",
    "actor_lr_warmup_steps": "actor_lr_warmup_steps",
    "actor_lr_scale": "actor_lr_scale",
    "bc_coeff": "bc_coeff",
    "bc_decay": "bc_decay",
    "mix_ratio": "mix_ratio",
    "rho_bar": "rho_bar",
    "c_bar": "c_bar",
    "log_std_subtract": "log_std_subtract",
    "demo_fraction": "demo_fraction",
}


def apply_extension_flags(config: dict[str, Any], algo: str, values: dict[str, Any]) -> None:
    """Override ``finetune.<algo>.bc_rl`` with the flags that were given (None = not given)."""
    settings = config["finetune"][algo].setdefault("bc_rl", {})
    for key, value in values.items():
        if value is not None:
            settings[key] = value


def apply_run_flags(
    config: dict[str, Any], algo: str, num_envs: int | None, eval_freq: int | None, eval_episodes: int | None
) -> None:
    """``--num-envs``, ``--eval-freq``, ``--eval-episodes`` override hparams.yml."""
    if num_envs is not None:
        config["finetune"][algo]["n_envs"] = num_envs
    if eval_freq is not None:
        config["eval"]["eval_freq"] = eval_freq
    if eval_episodes is not None:
        config["eval"]["n_eval_episodes"] = eval_episodes


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
    bc_files = read_best_bc(paths.select) if init in ("bc", "bc_naive") else None
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
    if init in ("bc", *IMITATION_INITS) or options.get("bc_steps", 0) > 0:
        options["demos_path"] = paths.demos / "demos.npz"
    check_writable(run_dir)
    if restart:
        stale = [
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
        remove_outputs(run_dir, stale)
    console.print(f"[bold]{algo.upper()} from {init}[/] (seed {seed}) -> {run_dir}")
    group = f"{config['env_id']}/{paths.run_name}"
    with tracking(tracker_args, config, run_dir, "finetune", f"{config['env_id']}-{run_dir.name}", group) as run:
        summary = finetune(config, run_dir, algo, init, seed, bc_files, **options)
        log_metrics(run, {"final_return": summary["final_return"] or 0.0})
    u = summary["unlearning"]
    ratio = f"{u['unlearning_ratio']:.2f}" if u.get("unlearning_ratio") is not None else "n/a"
    console.print(f"final return {summary['final_return']:.1f}; unlearning ratio {ratio}")
    return summary
