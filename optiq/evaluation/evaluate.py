"""Deterministic evaluation of a saved policy: return mean/std and episode length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optiq.atomic_io import write_json
from optiq.evaluation.video import record_video
from optiq.policies import PolicyFiles, check_spaces, eval_venv_for, load_model
from optiq.records import RunRecord
from optiq.rl.training import evaluate_returns
from optiq.tracking import log_scalars


def evaluate_saved_policy(
    config: dict[str, Any], files: PolicyFiles, n_episodes: int, seed: int, device: str = "auto"
) -> dict[str, Any]:
    model = load_model(files, device)
    venv = eval_venv_for(config, files, seed)
    check_spaces(model, venv, str(files.model))
    returns, lengths = evaluate_returns(model, venv, n_episodes)
    venv.close()
    return {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "returns": returns.tolist(),
        "lengths": lengths.tolist(),
        "n_episodes": n_episodes,
        "seed": seed,
        "deterministic": True,
    }


def evaluate_and_record(
    config: dict[str, Any],
    label: str,
    files: PolicyFiles,
    out_dir: str | Path,
    n_episodes: int,
    seed: int,
    video: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Write ``out_dir/eval.json`` (and ``video.mp4``); return the evaluation."""
    out_dir = Path(out_dir)
    record = RunRecord("05_eval_video", out_dir, config, seed, label=label, policy=files.to_json())
    result = {"label": label, "env_id": config["env_id"], "policy": files.to_json()}
    result.update(evaluate_saved_policy(config, files, n_episodes, seed, device))
    result["video"] = None
    if video:
        path = record_video(
            files,
            config["env_id"],
            out_dir / "video.mp4",
            config["eval"]["video_length"],
            seed,
            device=device,
            obs_config=config.get("obs"),
        )
        result["video"] = str(path) if path else None
    write_json(out_dir / "eval.json", result)
    log_scalars(
        out_dir / "tb",
        {
            "eval/return_mean": result["return_mean"],
            "eval/return_std": result["return_std"],
            "eval/length_mean": result["length_mean"],
        },
    )
    record.add_artifact(out_dir / "eval.json")
    if result["video"]:
        record.add_artifact(out_dir / "video.mp4")
    record.finish(return_mean=result["return_mean"])
    return result
