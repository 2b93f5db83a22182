"""Stage 04 baselines from the ``imitation`` library: AIRL, GAIL (adversarial IRL) and DAgger.

They are ``--init airl|gail|dagger`` of ``scripts/04_finetune_rl.py`` and write exactly the
artefacts of a fine-tuning run (``eval.csv``, ``final_model.zip``, ``summary.json`` with a
``policy`` entry for stage 05, ``run.json``) in ``04_finetune/ppo_<init>_seed<N>/``, so stages
05 and 06 treat them like BC -> RL and RL from scratch. Their settings are the optional
``imitation:`` section of an env in hparams.yml (``adversarial:`` and ``dagger:``); absent
keys take the defaults of :class:`optiq.settings.AdversarialSettings` and
:class:`optiq.settings.DaggerSettings`.

These runs do not resume: the discriminator, its optimiser and the reward normalisation are
not checkpointed. A run that did not finish starts over cleanly (its partial outputs are
deleted first); a finished run (summary.json at the full budget) is returned as it is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from optiq.atomic_io import read_json, remove_outputs, remove_stale_temp_files, write_json, write_with
from optiq.envs import pixel_mode
from optiq.errors import OptiqError
from optiq.policies import PolicyFiles
from optiq.records import RunRecord
from optiq.rl.inits import IMITATION_INITS
from optiq.rl.training import EvalLog, PeriodicEvaluation, evaluation_reseed, unlearning_report
from optiq.settings import AdversarialSettings, DaggerSettings, check_partial

# What a fresh start deletes: everything an earlier, unfinished run of this folder may have left.
RUN_OUTPUTS = [
    "eval.csv",
    "final_model.zip",
    "vecnormalize.pkl",
    "reward_net.pt",
    "summary.json",
    "run.json",
    "tb",
    "dagger",
    "checkpoints",
]


def adversarial_settings(config: dict[str, Any]) -> AdversarialSettings:
    """The env's ``imitation.adversarial`` settings over the defaults; unknown or bad keys are errors."""
    section = (config.get("imitation") or {}).get("adversarial")
    return check_partial(AdversarialSettings, section, "imitation.adversarial")


def dagger_settings(config: dict[str, Any]) -> DaggerSettings:
    """The env's ``imitation.dagger`` settings over the defaults; unknown or bad keys are errors."""
    return check_partial(DaggerSettings, (config.get("imitation") or {}).get("dagger"), "imitation.dagger")


def dagger_budget(config: dict[str, Any], total_timesteps: int | None = None) -> int:
    """DAgger's env steps: ``budget_fraction`` of the fine-tuning budget."""
    total = int(total_timesteps or config["finetune"]["total_timesteps"])
    return max(1, int(round(dagger_settings(config).budget_fraction * total)))


def required_timesteps(config: dict[str, Any], init: str) -> int:
    """Env steps after which a stage-04 run of ``init`` is complete (DAgger's budget is smaller)."""
    if init == "dagger":
        return dagger_budget(config)
    return int(config["finetune"]["total_timesteps"])


def check_imitation_init(algo: str, init: str, config: dict[str, Any] | None = None, **unsupported: Any) -> None:
    """One-line errors for what AIRL/GAIL/DAgger runs cannot do (before anything is written)."""
    if init not in IMITATION_INITS:
        return
    if algo != "ppo":
        raise OptiqError(f"--init {init} trains a PPO policy; {algo.upper()} is not supported (use --algo ppo)")
    if config is not None and pixel_mode(config):
        raise OptiqError(f"--init {init} works on state observations only (use --obs state)")
    given = sorted(name for name, value in unsupported.items() if value)
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise OptiqError(f"{flags} cannot be used with --init {init} (these runs start over instead of resuming)")


class OnDemandEvaluation(PeriodicEvaluation):
    """:class:`PeriodicEvaluation` for training split over many ``learn`` calls (one per round).

    The base class evaluates at the start and end of every ``learn``; here the caller
    evaluates at step 0 and at the end, and the callback only fires every ``freq`` env steps.
    """

    def _on_training_start(self) -> None:
        return None

    def _on_training_end(self) -> None:
        return None

    def evaluate_at(self, timesteps: int) -> dict[str, float]:
        """Evaluate now and log the row at ``timesteps`` (unless that step was evaluated already)."""
        self.num_timesteps = int(timesteps)
        for row in self.log.rows:
            if row["timesteps"] == timesteps:
                return row
        return self.evaluate()


def start_evaluation(
    model: BaseAlgorithm, eval_venv: VecEnv, run_dir: Path, config: dict[str, Any], eval_seed: int
) -> OnDemandEvaluation:
    """The run's evaluation protocol (eval.eval_freq, eval.n_eval_episodes, eval.paired_episodes) bound to ``model``."""
    evaluation = OnDemandEvaluation(
        eval_venv,
        EvalLog(run_dir / "eval.csv"),
        config["eval"]["eval_freq"],
        config["eval"]["n_eval_episodes"],
        reseed=evaluation_reseed(config, eval_seed),
    )
    evaluation.init_callback(model)
    return evaluation


def fresh_start(run_dir: Path, config: dict[str, Any], init: str, total: int) -> dict[str, Any] | None:
    """The summary of a finished run at ``total`` steps, or None after clearing a partial one."""
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        summary = read_json(summary_path)
        if summary.get("init") == init and summary.get("total_timesteps", 0) >= total:
            return summary
    remove_stale_temp_files(run_dir)
    remove_outputs(run_dir, RUN_OUTPUTS)
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def finish_run(
    run_dir: Path,
    record: RunRecord,
    config: dict[str, Any],
    init: str,
    seed: int,
    model: BaseAlgorithm,
    rows: list[dict[str, float]],
    total: int,
    vecnormalize: Path | None,
    settings: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Write final_model.zip, summary.json (finetune()'s keys) and run.json; return the summary."""
    write_with(run_dir / "final_model.zip", lambda p: model.save(p))
    policy = PolicyFiles(run_dir / "final_model.zip", vecnormalize, "ppo", raw_obs=vecnormalize is None)
    summary = {
        "env_id": config["env_id"],
        "algo": "ppo",
        "init": init,
        "seed": seed,
        "total_timesteps": int(rows[-1]["timesteps"]) if rows else 0,
        "final_return": rows[-1]["return_mean"] if rows else None,
        "best_return": max(r["return_mean"] for r in rows) if rows else None,
        "unlearning": unlearning_report(rows, total),
        "bc_checkpoint": None,
        "extensions": {"method": init, **settings},
        "bootstrap": None,
        "policy": policy.to_json(),
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    write_json(run_dir / "summary.json", summary)
    for name in ("final_model.zip", "vecnormalize.pkl", "reward_net.pt", "eval.csv", "summary.json"):
        record.add_artifact(run_dir / name)
    record.finish(final_return=summary["final_return"], unlearning=summary["unlearning"], bootstrap=None)
    return summary


def run_imitation(
    config: dict[str, Any],
    run_dir: Path,
    algo: str,
    init: str,
    seed: int,
    demos_path: Path | None,
    total_timesteps: int | None = None,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Stage 04 for ``--init airl|gail|dagger``: train from the stage-01 demos; return summary.json.

    Called by :func:`optiq.rl.finetune.finetune`, which has run :func:`check_imitation_init`.
    """
    if demos_path is None or not Path(demos_path).is_file():
        raise OptiqError(f"--init {init} needs the demos of stage 01 (run scripts/01_collect_demos.py first)")
    if init == "dagger":
        from optiq.rl.dagger import train_dagger

        return train_dagger(config, run_dir, seed, Path(demos_path), total_timesteps, device, progress_bar)
    from optiq.rl.adversarial import train_adversarial

    return train_adversarial(config, run_dir, init, seed, Path(demos_path), total_timesteps, device, progress_bar)
