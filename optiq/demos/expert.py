"""Train an expert (PPO or SAC per hparams.yml) and record what it achieves.

The expert is saved as ``expert.zip`` + ``vecnormalize.pkl`` (if the algorithm
normalises observations) + ``expert.json`` with the command, seed, budget and the
measured deterministic return. Training is resumable from ``checkpoints/``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from optiq.algos import algo_class, build_model, make_eval_venv, make_training_venv
from optiq.atomic_io import copy_file, read_json, remove_stale_temp_files, write_json
from optiq.config import state_config
from optiq.errors import OptiqError
from optiq.policies import PolicyFiles, eval_venv_for, load_model
from optiq.records import RunRecord
from optiq.rl.training import (
    EvalLog,
    PeriodicEvaluation,
    evaluate_returns,
    evaluation_reseed,
    latest_checkpoint,
    learn,
    resume_model,
    save_checkpoint,
)
from optiq.seeding import seed_everything

EXPERT_JSON = "expert.json"


def expert_files(expert_dir: str | Path) -> PolicyFiles:
    """The policy files of an expert folder written by :func:`train_expert`."""
    expert_dir = Path(expert_dir)
    info_path = expert_dir / EXPERT_JSON
    if not info_path.is_file():
        raise OptiqError(f"no {EXPERT_JSON} in {expert_dir} (train one with 01_collect_demos.py --train-expert)")
    info = read_json(info_path)
    norm = expert_dir / "vecnormalize.pkl"
    return PolicyFiles(expert_dir / "expert.zip", norm if norm.is_file() else None, info["algo"])


def expert_info(expert_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(expert_dir) / EXPERT_JSON)


def expert_training_config(config: dict[str, Any], algo: str) -> dict[str, Any]:
    """The env's settings with ``expert.hyperparams`` / ``expert.policy_kwargs`` (if any) replacing
    ``finetune.<algo>``'s: an expert may need other settings than fine-tuning (see hparams.yml)."""
    expert = config["expert"]
    if expert.get("hyperparams") is None and expert.get("policy_kwargs") is None:
        return config
    config = copy.deepcopy(config)
    settings = config["finetune"][algo]
    if expert.get("hyperparams") is not None:
        settings["hyperparams"] = dict(expert["hyperparams"])
    if expert.get("policy_kwargs") is not None:
        settings["policy_kwargs"] = dict(expert["policy_kwargs"])
    return config


def train_expert(
    config: dict[str, Any],
    out_dir: str | Path,
    seed: int,
    algo: str | None = None,
    total_timesteps: int | None = None,
    n_eval_episodes: int = 10,
    progress_bar: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Train (or resume training) an expert and evaluate it; return the contents of expert.json.

    Experts always learn from states (the state twin of a pixel config): they only have to
    demonstrate, and are shared by the state and pixel runs of an env.
    """
    out_dir = Path(out_dir)
    config = state_config(config)
    algo = algo or config["expert"]["algo"]
    config = expert_training_config(config, algo)
    total = int(total_timesteps or config["expert"]["n_timesteps"])
    out_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord("expert", out_dir, config, seed, algo=algo, total_timesteps=total)
    seed_everything(seed)
    remove_stale_temp_files(out_dir)

    checkpoint = latest_checkpoint(out_dir / "checkpoints")
    venv = make_training_venv(config, algo, seed, norm_stats_path=checkpoint.vecnormalize if checkpoint else None)
    if checkpoint is not None:
        model = resume_model(algo_class(algo), checkpoint, venv, device, str(out_dir / "tb"))
    else:
        model = build_model(config, algo, venv, seed, tensorboard_log=out_dir / "tb", device=device)
    log = EvalLog(out_dir / "eval.csv")
    log.truncate_after(int(model.num_timesteps))
    best_dir = out_dir / "best"
    best_json = best_dir / "best.json"
    best = read_json(best_json) if best_json.is_file() else {"return_mean": -float("inf"), "timesteps": None}

    def keep_best(row: dict[str, float]) -> None:
        # PPO's evaluation return oscillates; like rl-baselines3-zoo, keep the best policy seen.
        if row["return_mean"] > best["return_mean"]:
            save_checkpoint(evaluation.model, best_dir, keep=1, replay_buffer=False)
            best.update(return_mean=row["return_mean"], timesteps=int(row["timesteps"]))
            write_json(best_json, best)

    evaluation = PeriodicEvaluation(
        make_eval_venv(config, algo, seed + 1000),
        log,
        config["eval"]["eval_freq"],
        config["eval"]["n_eval_episodes"],
        on_eval=keep_best,
        reseed=evaluation_reseed(config, seed + 1000),
    )
    learn(model, total, out_dir, [evaluation], config["finetune"]["checkpoint_freq"], progress_bar, "expert")

    # The artifact is the best evaluated policy (the last one if no evaluation beat it), under stable names.
    chosen = latest_checkpoint(best_dir) or latest_checkpoint(out_dir / "checkpoints")
    assert chosen is not None
    copy_file(chosen.model, out_dir / "expert.zip")
    if chosen.vecnormalize is not None:
        copy_file(chosen.vecnormalize, out_dir / "vecnormalize.pkl")

    files = PolicyFiles(out_dir / "expert.zip", out_dir / "vecnormalize.pkl" if chosen.vecnormalize else None, algo)
    returns, lengths = evaluate_returns(
        load_model(files, device), eval_venv_for(config, files, seed + 2000), n_eval_episodes
    )
    info = {
        "env_id": config["env_id"],
        "algo": algo,
        "seed": seed,
        "total_timesteps": int(model.num_timesteps),
        "selected_at_timesteps": chosen.timesteps,
        "selection": "best mean return of the periodic evaluations during training (fresh episodes below)",
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "n_eval_episodes": n_eval_episodes,
        "command": " ".join(record.data["command"]),
        "versions": record.data["versions"],
        "git": record.data["git"],
    }
    write_json(out_dir / EXPERT_JSON, info)
    for artifact in ("expert.zip", "vecnormalize.pkl", EXPERT_JSON):
        record.add_artifact(out_dir / artifact)
    record.finish(expert_return_mean=info["return_mean"], expert_return_std=info["return_std"])
    return info
