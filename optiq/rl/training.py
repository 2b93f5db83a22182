"""Resumable SB3 training: periodic checkpoints and deterministic evaluation to CSV.

Used by the expert trainer (stage 01) and fine-tuning (stage 04). A checkpoint holds
the model zip, the VecNormalize statistics and, for off-policy algorithms, the replay
buffer; ``latest.json`` names the newest complete one, and is written last, so a kill
between files never points at a partial checkpoint.
"""

from __future__ import annotations

import csv
import io
import pickle
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from optiq.atomic_io import read_json, write_json, write_text, write_with
from optiq.errors import OptiqError
from optiq.rl.averaging import evaluated_policy
from optiq.rl.export import save_vecnormalize
from optiq.rl.interrupt import Interrupted, StopOnSignal, stop_on_signals, stop_requested
from optiq.settings import configured

EVAL_COLUMNS = ("timesteps", "return_mean", "return_std", "length_mean", "wall_time_s")


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint on disk."""

    timesteps: int
    model: Path
    vecnormalize: Path | None
    replay_buffer: Path | None


def latest_checkpoint(ckpt_dir: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint in ``ckpt_dir``, or None."""
    ckpt_dir = Path(ckpt_dir)
    marker = ckpt_dir / "latest.json"
    if not marker.is_file():
        return None
    try:
        data = read_json(marker)
    except (OSError, ValueError) as exc:
        raise OptiqError(f"corrupt checkpoint index {marker}: {exc} (delete the folder to start over)") from None

    def _path(key: str) -> Path | None:
        return ckpt_dir / data[key] if data.get(key) else None

    checkpoint = Checkpoint(
        int(data["timesteps"]), ckpt_dir / data["model"], _path("vecnormalize"), _path("replay_buffer")
    )
    if not checkpoint.model.is_file():
        raise OptiqError(
            f"checkpoint index {marker} names a missing file {checkpoint.model} (delete the folder to start over)"
        )
    return checkpoint


def refuse_shrunk_budget(run_dir: str | Path, checkpoint: Checkpoint | None, total: int) -> None:
    """Refuse to resume a finished run with a budget smaller than the one it finished.

    Such a resume trains nothing, yet would record the smaller budget in ``run.json`` beside
    a policy and a curve that ran to the larger one. Resuming with the run's own budget (a
    finished run ends a rollout past it) or a larger one is fine.
    """
    record = Path(run_dir) / "run.json"
    if checkpoint is None or checkpoint.timesteps < total or not record.is_file():
        return
    try:
        recorded = read_json(record).get("total_timesteps")
    except (OSError, ValueError):
        return  # an unreadable record is rewritten at the end; nothing to compare with
    if isinstance(recorded, int) and total < recorded:
        raise OptiqError(
            f"{run_dir} already trained {checkpoint.timesteps:,} steps for a {recorded:,}-step budget; "
            f"--total-steps {total:,} would shrink it (pass --total-steps {recorded} or a new --run-name)"
        )


def save_checkpoint(
    model: BaseAlgorithm, ckpt_dir: str | Path, keep: int = 2, replay_buffer: bool = True
) -> Checkpoint:
    """Atomically write model, normalisation stats and (for resuming) replay buffer; then update latest.json."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    model_path = write_with(ckpt_dir / f"model_{step:09d}.zip", lambda p: model.save(p))
    index: dict[str, Any] = {"timesteps": step, "model": model_path.name, "vecnormalize": None, "replay_buffer": None}
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        norm_path = save_vecnormalize(venv, ckpt_dir / f"vecnormalize_{step:09d}.pkl")
        index["vecnormalize"] = norm_path.name
    if replay_buffer and isinstance(model, OffPolicyAlgorithm):
        buffer_path = write_with(ckpt_dir / f"replay_buffer_{step:09d}.pkl", lambda p: model.save_replay_buffer(p))
        index["replay_buffer"] = buffer_path.name
    write_json(ckpt_dir / "latest.json", index)
    _prune(ckpt_dir, keep)
    return latest_checkpoint(ckpt_dir)  # type: ignore[return-value]


def _prune(ckpt_dir: Path, keep: int) -> None:
    for pattern in ("model_*.zip", "vecnormalize_*.pkl", "replay_buffer_*.pkl"):
        for stale in sorted(ckpt_dir.glob(pattern))[:-keep]:
            stale.unlink(missing_ok=True)


class PeriodicCheckpoint(BaseCallback):
    """Save a resumable checkpoint every ``freq`` env steps."""

    def __init__(self, ckpt_dir: Path, freq: int):
        super().__init__()
        self.ckpt_dir = ckpt_dir
        self.freq = freq
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = schedule_start(self.num_timesteps, self.freq)

    def _on_step(self) -> bool:
        if self.freq > 0 and self.num_timesteps - self._last >= self.freq:
            self._last = self.num_timesteps
            save_checkpoint(self.model, self.ckpt_dir)
        return True


def schedule_start(timesteps: int, freq: int) -> int:
    """The last multiple of ``freq`` at or before ``timesteps``: a run resumed from an interrupt
    checkpoint (any step) keeps evaluating and checkpointing on the same schedule."""
    return timesteps - timesteps % freq if freq > 0 else timesteps


class EvalLog:
    """The learning curve: one CSV row per deterministic evaluation, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict[str, float]] = read_eval_csv(path) if path.is_file() else []

    def truncate_after(self, timesteps: int) -> None:
        self.rows = [row for row in self.rows if row["timesteps"] <= timesteps]
        self._write()

    def append(self, row: dict[str, float]) -> None:
        self.rows = [r for r in self.rows if r["timesteps"] != row["timesteps"]] + [row]
        self._write()

    def _write(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EVAL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            values = {key: row[key] for key in EVAL_COLUMNS}
            values["timesteps"] = int(values["timesteps"])  # a step count: 20000, not 20000.0
            writer.writerow(values)
        write_text(self.path, buffer.getvalue())


def read_eval_csv(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def evaluation_reseed(config: dict[str, Any], eval_seed: int) -> int | None:
    """``eval_seed`` where evaluations are paired (``eval.paired_episodes``), else None (fresh start states)."""
    return eval_seed if configured(config, "eval.paired_episodes") else None


def evaluate_returns(model: Any, eval_venv: VecEnv, n_episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic episode returns and lengths (raw rewards, via the Monitor wrapper)."""
    returns, lengths = evaluate_policy(
        model, eval_venv, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True, warn=False
    )
    return np.asarray(returns, dtype=float), np.asarray(lengths, dtype=float)


class PeriodicEvaluation(BaseCallback):
    """Evaluate deterministically at the start and every ``freq`` env steps; log to CSV and TensorBoard."""

    def __init__(
        self,
        eval_venv: VecEnv,
        log: EvalLog,
        freq: int,
        n_episodes: int,
        on_eval: Callable[[dict[str, float]], None] | None = None,
        reseed: int | None = None,
    ):
        super().__init__()
        self.eval_venv = eval_venv
        self.reseed = reseed  # not None: re-seed the eval env before every evaluation (eval.paired_episodes)
        self.log = log
        self.freq = freq
        self.n_episodes = n_episodes
        self.on_eval = on_eval
        self._last = 0
        self._start = time.monotonic()

    def _on_training_start(self) -> None:
        self._last = schedule_start(self.num_timesteps, self.freq)
        # The start of a run is evaluated (step 0: the initial policy); a resumed run continues its schedule.
        if self.num_timesteps == 0 and not any(row["timesteps"] == 0 for row in self.log.rows):
            self.evaluate()

    def _on_step(self) -> bool:
        if self.freq > 0 and self.num_timesteps - self._last >= self.freq:
            self._last = self.num_timesteps
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        # An interrupted run is evaluated where its schedule says, after resuming, not at the stop.
        # The model's count: probes at a rollout's end (optiq/rl/anchor.py) add env steps after the last step.
        self.num_timesteps = int(self.model.num_timesteps)
        if stop_requested() is None and not any(row["timesteps"] == self.num_timesteps for row in self.log.rows):
            self.evaluate()

    def evaluate(self) -> dict[str, float]:
        # The policy users get: the weights' average where the model keeps one (optiq/rl/averaging.py).
        with evaluated_policy(self.model):
            return self._evaluate()

    def _evaluate(self) -> dict[str, float]:
        train_env = self.model.get_env()
        if isinstance(train_env, VecNormalize):
            sync_envs_normalization(train_env, self.eval_venv)
        if self.reseed is not None:  # the next reset draws the same start states as every other evaluation
            self.eval_venv.seed(self.reseed)
        returns, lengths = evaluate_returns(self.model, self.eval_venv, self.n_episodes)
        row = {
            "timesteps": float(self.num_timesteps),
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "length_mean": float(lengths.mean()),
            "wall_time_s": round(time.monotonic() - self._start, 2),
        }
        self.log.append(row)
        if self.logger is not None:
            self.logger.record("eval/return_mean", row["return_mean"])
            self.logger.record("eval/return_std", row["return_std"])
            self.logger.record("eval/length_mean", row["length_mean"])
        if self.on_eval is not None:
            self.on_eval(row)
        return row


def resume_model(
    algo_cls: type[BaseAlgorithm],
    checkpoint: Checkpoint,
    venv: VecEnv,
    device: str = "auto",
    tensorboard_log: str | None = None,
) -> BaseAlgorithm:
    """Load a checkpoint onto ``venv`` (whose VecNormalize stats were loaded by the caller)."""
    try:
        model = algo_cls.load(str(checkpoint.model), env=venv, device=device, tensorboard_log=tensorboard_log)
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as exc:
        raise OptiqError(
            f"checkpoint {checkpoint.model} is damaged ({type(exc).__name__}: {exc}); "
            "rerun with --restart to start over"
        ) from None
    except Exception as exc:
        raise OptiqError(
            f"cannot load checkpoint {checkpoint.model}: {type(exc).__name__}: {exc} (check --device and the installed "
            "versions; if the file itself is damaged, rerun with --restart)"
        ) from None
    if checkpoint.replay_buffer is not None and isinstance(model, OffPolicyAlgorithm):
        model.load_replay_buffer(str(checkpoint.replay_buffer))
    return model


def learn(
    model: BaseAlgorithm,
    total_timesteps: int,
    run_dir: Path,
    callbacks: list[BaseCallback],
    checkpoint_freq: int,
    progress_bar: bool,
    tb_log_name: str = "run",
) -> None:
    """Train until ``model.num_timesteps == total_timesteps``, checkpointing on the way and at the end."""
    remaining = total_timesteps - int(model.num_timesteps)
    if remaining > 0:
        all_callbacks = CallbackList(
            [*callbacks, PeriodicCheckpoint(run_dir / "checkpoints", checkpoint_freq), StopOnSignal()]
        )
        with stop_on_signals():
            model.learn(
                remaining,
                callback=all_callbacks,
                reset_num_timesteps=model.num_timesteps == 0,
                progress_bar=progress_bar,
                tb_log_name=tb_log_name,
            )
            save_checkpoint(model, run_dir / "checkpoints")
            signum = stop_requested()
        if signum is not None:
            raise Interrupted(f"stopped by signal {signum} at {model.num_timesteps} steps; checkpoint saved")


EARLY_FRACTION = 0.2


def unlearning_report(rows: list[dict[str, float]], total_timesteps: int) -> dict[str, Any]:
    """Return at step 0, the worst eval return in the first 20 % of the budget, and their ratio.

    A ratio near 1 means fine-tuning kept what BC learned; near 0 means it collapsed first.
    """
    if not rows:
        return {"return_at_start": None, "min_return_early": None, "unlearning_ratio": None}
    start = next((r["return_mean"] for r in rows if r["timesteps"] == 0), rows[0]["return_mean"])
    early = [r["return_mean"] for r in rows if 0 < r["timesteps"] <= EARLY_FRACTION * total_timesteps]
    min_early = min(early) if early else start
    ratio = min_early / start if start and start > 0 else None
    return {
        "return_at_start": start,
        "min_return_early": min_early,
        "early_window_timesteps": int(EARLY_FRACTION * total_timesteps),
        "unlearning_ratio": ratio,
    }
