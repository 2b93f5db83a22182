"""Stage 03: pick the BC checkpoint to start RL from, and say why in ``best.json``.

``val_loss``: lowest held-out BC loss (negative log-likelihood). ``eval_return``: highest
mean deterministic return over K episodes in the env (slower, closer to what matters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optiq.atomic_io import write_json
from optiq.bc.train import list_bc_checkpoints
from optiq.errors import OptiqError
from optiq.policies import PolicyFiles, check_spaces, eval_venv_for, load_model
from optiq.records import RunRecord
from optiq.rl.training import evaluate_returns
from optiq.tracking import log_series

CRITERIA = ("val_loss", "eval_return")


def choose_checkpoint(candidates: list[dict[str, Any]], criterion: str) -> dict[str, Any]:
    """The best candidate: lowest ``val_loss`` or highest ``eval_return``; ties go to the earlier epoch."""
    if criterion not in CRITERIA:
        raise OptiqError(f"unknown selection criterion '{criterion}'; choose one of: {', '.join(CRITERIA)}")
    if not candidates:
        raise OptiqError("no BC checkpoints to choose from (run scripts/02_train_bc.py first)")
    if criterion == "val_loss":
        return min(candidates, key=lambda c: (c["val_loss"], c["epoch"]))
    return max(candidates, key=lambda c: (c["eval_return"], -c["epoch"]))


def evaluate_checkpoint(
    config: dict[str, Any], files: PolicyFiles, n_episodes: int, seed: int, device: str
) -> dict[str, float]:
    model = load_model(files, device)
    venv = eval_venv_for(config, files, seed)
    check_spaces(model, venv, f"BC checkpoint {files.model}")
    returns, lengths = evaluate_returns(model, venv, n_episodes)
    venv.close()
    return {
        "eval_return": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_length": float(lengths.mean()),
    }


def select_best_checkpoint(
    config: dict[str, Any],
    bc_dir: str | Path,
    out_dir: str | Path,
    criterion: str = "val_loss",
    n_episodes: int = 5,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Write ``best.json`` naming the chosen checkpoint, the criterion and every candidate's score."""
    out_dir = Path(out_dir)
    record = RunRecord("03_select_best", out_dir, config, seed, criterion=criterion)
    candidates = [dict(c) for c in list_bc_checkpoints(bc_dir)]
    if criterion == "eval_return":
        for candidate in candidates:
            files = PolicyFiles.from_json(candidate)
            candidate.update(evaluate_checkpoint(config, files, n_episodes, seed, device))
    elif criterion not in CRITERIA:
        choose_checkpoint(candidates, criterion)  # raises the one-line error
    best = choose_checkpoint(candidates, criterion)
    if criterion == "val_loss":
        reason = f"lowest validation loss {best['val_loss']:.4f} of {len(candidates)} checkpoints"
    else:
        reason = (
            f"highest mean return {best['eval_return']:.1f} over {n_episodes} episodes of {len(candidates)} checkpoints"
        )
    result = {
        "env_id": config["env_id"],
        "criterion": criterion,
        "epoch": best["epoch"],
        "model": best["model"],
        "vecnormalize": best.get("vecnormalize"),
        "algo": best["algo"],
        "reason": reason,
        "candidates": candidates,
    }
    write_json(out_dir / "best.json", result)
    log_series(
        out_dir / "tb",
        [
            (int(c["epoch"]), {"select/val_loss": c.get("val_loss"), "select/eval_return": c.get("eval_return")})
            for c in candidates
        ],
    )
    record.finish(best_epoch=best["epoch"], reason=reason)
    return result
