"""DAgger (imitation's ``DAggerTrainer``) with the stage-01 expert as the queried demonstrator.

The learner is ``model.policy`` of the PPO that :func:`optiq.algos.build_model` builds, trained
by imitation's ``bc.BC`` with the env's ``bc`` settings and, as in stage 02, on observations
normalised with statistics of the demos (frozen), saved as vecnormalize.pkl. So DAgger has
BC's architecture and preprocessing; what differs is the data: each round the learner (with
probability ``1 - beta``) or the expert drives, and the expert labels every visited state.

The expert is loaded like ``01_collect_demos`` does (its model plus its own statistics) and
acts on the raw observations behind the learner's normalisation. Demos without a queryable
expert (``metadata.json`` "source" other than "expert", e.g. a dataset) are an error.
Budget and rounds: :class:`optiq.rl.imitation_methods.DaggerSettings`. ``eval.csv`` has one
row per round at the env steps collected so far (0: after BC on the demos alone), on the
same x-axis as RL. imitation's scratch folder (collected episodes) is ``<run>/dagger/``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from imitation.algorithms.dagger import DAggerTrainer, LinearBetaSchedule
from imitation.data import rollout, serialize, types
from imitation.util import logger as imit_logger
from rich.console import Console
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from optiq.algos import build_model, make_eval_venv
from optiq.atomic_io import read_json, write_with
from optiq.bc.train import fit_observation_statistics, make_bc_trainer
from optiq.demos.expert import expert_files
from optiq.demos.storage import load_demos
from optiq.envs import make_vec
from optiq.errors import OptiqError
from optiq.policies import PolicyFiles, RawObsPolicy, raw_obs_policy
from optiq.records import RunRecord
from optiq.rl.imitation_methods import dagger_budget, dagger_settings, finish_run, fresh_start, start_evaluation
from optiq.seeding import seed_everything

console = Console()
# imitation stores each episode's infos with jsonpickle, which warns about a future default on every one.
warnings.filterwarnings("ignore", message="keys will default to True in jsonpickle", category=DeprecationWarning)


def queryable_expert(demos_path: Path) -> PolicyFiles:
    """The saved expert that recorded the demos (01_demos/metadata.json); an error if there is none."""
    meta_path = demos_path.parent / "metadata.json"
    if not meta_path.is_file():
        raise OptiqError(f"no {meta_path} beside the demos (rerun scripts/01_collect_demos.py)")
    meta = read_json(meta_path)
    if meta.get("source") != "expert" or not meta.get("expert_path"):
        raise OptiqError(
            f"--init dagger needs an expert to query, but the demos in {demos_path.parent} come from "
            f"'{meta.get('source')}' with no expert_path (use --init bc, airl or gail)"
        )
    return expert_files(Path(meta["expert_path"]).parent)


class ExpertBehindNormalisation:
    """Policy callable for imitation's rollouts: the expert acting on the raw observation behind ``vecnorm``.

    ``VecNormalize`` keeps the raw observation of its last reset/step, which is the one the
    rollout passes in; using it avoids un-normalising clipped values.
    """

    def __init__(self, expert: RawObsPolicy, vecnorm: VecNormalize | None):
        self.expert = expert
        self.vecnorm = vecnorm

    def __call__(self, obs: np.ndarray, state: Any = None, episode_start: Any = None) -> tuple[np.ndarray, Any]:
        raw = obs
        if self.vecnorm is not None:
            raw = self.vecnorm.get_original_obs()
            assert np.allclose(self.vecnorm.normalize_obs(raw), obs, atol=1e-5), "raw observation out of step"
        return self.expert(raw)


def _seed_round_zero(scratch: Path, trajectories: list[types.TrajectoryWithRew], vecnorm: VecNormalize | None) -> None:
    """Put the stage-01 demos in DAgger's round-0 folder (one file per episode, as DAggerTrainer reads them)."""
    import datasets

    datasets.disable_progress_bars()  # imitation saves every episode as a dataset, each with a progress bar
    round_dir = scratch / "demos" / "round-000"
    round_dir.mkdir(parents=True, exist_ok=True)
    for index, traj in enumerate(trajectories):
        if vecnorm is not None:
            traj = dataclasses.replace(traj, obs=vecnorm.normalize_obs(traj.obs).astype(np.float32))
        serialize.save(round_dir / f"stage01_demo_{index:04d}.npz", [traj])


def train_dagger(
    config: dict[str, Any],
    run_dir: Path,
    seed: int,
    demos_path: Path,
    total_timesteps: int | None = None,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Run DAgger for ``budget_fraction`` of the fine-tuning budget; write and return summary.json."""
    settings = dagger_settings(config)
    budget = dagger_budget(config, total_timesteps)
    expert_policy_files = queryable_expert(demos_path)
    finished = fresh_start(run_dir, config, "dagger", budget)
    if finished is not None:
        console.print(f"{run_dir.name} already finished at {finished['total_timesteps']:,} steps (--restart to redo)")
        return finished
    started = time.monotonic()
    record = RunRecord("04_finetune_rl", run_dir, config, seed, algo="ppo", init="dagger", total_timesteps=budget)
    seed_everything(seed)

    raw_venv = make_vec(config["env_id"], 1, seed)
    trajectories = load_demos(demos_path, raw_venv.observation_space, raw_venv.action_space)
    expert = raw_obs_policy(expert_policy_files, make_vec(config["env_id"], 1, seed), device)
    vecnorm: VecNormalize | None = None
    venv: VecEnv = raw_venv
    norm_path = None
    if config["finetune"]["ppo"]["normalize"]:
        # Like stage 02: statistics of the demo observations, frozen, saved beside the policy.
        vecnorm = VecNormalize(raw_venv, norm_obs=True, norm_reward=False, training=False)
        fit_observation_statistics(vecnorm, np.concatenate([t.obs for t in trajectories]))
        norm_path = write_with(run_dir / "vecnormalize.pkl", lambda p: vecnorm.save(str(p)))
        venv = vecnorm
    model = build_model(config, "ppo", venv, seed, device=device)
    logger = imit_logger.configure(str(run_dir / "tb"), ["tensorboard"])
    model.set_logger(logger)
    rng = np.random.default_rng(seed)
    bc_trainer = make_bc_trainer(model.policy, config["bc"], rng, model.device, logger)
    scratch = run_dir / "dagger"
    _seed_round_zero(scratch, trajectories, vecnorm)
    trainer = DAggerTrainer(
        venv=venv,
        scratch_dir=scratch,
        rng=rng,
        beta_schedule=LinearBetaSchedule(settings.beta_rampdown_rounds or settings.rounds),
        bc_trainer=bc_trainer,
        custom_logger=logger,
    )
    bc_kwargs = {"n_epochs": settings.bc_epochs, "log_rollouts_venv": None, "progress_bar": False}
    eval_venv = (
        make_eval_venv(config, "ppo", seed + 1000, norm_stats_path=norm_path)
        if norm_path
        else make_vec(config["env_id"], 1, seed + 1000)
    )
    evaluation = start_evaluation(model, eval_venv, run_dir, config, seed + 1000)
    expert_policy = ExpertBehindNormalisation(expert, vecnorm)
    round_steps = max(1, budget // settings.rounds)

    trainer.extend_and_update(bc_kwargs)  # round 0: BC on the demos alone
    row = evaluation.evaluate_at(0)
    console.print(
        f"DAgger: budget {budget:,} env steps in rounds of >= {round_steps:,}; after BC {row['return_mean']:.1f}"
    )
    steps = 0
    while steps < budget:
        collector = trainer.create_trajectory_collector()
        new = rollout.generate_trajectories(
            expert_policy,
            collector,
            rollout.make_sample_until(min_timesteps=min(round_steps, budget - steps), min_episodes=1),
            rng=rng,
        )
        steps += sum(len(t.acts) for t in new)
        trainer.extend_and_update(bc_kwargs)
        row = evaluation.evaluate_at(steps)
        if progress_bar:
            console.print(
                f"round {trainer.round_num - 1}: beta {collector.beta:.2f}, {steps:,} env steps, "
                f"return {row['return_mean']:.1f}"
            )
    summary_settings = {
        **dataclasses.asdict(settings),
        "budget_timesteps": budget,
        "round_timesteps": round_steps,
        "n_rounds": trainer.round_num - 1,
        "n_demo_episodes": len(trajectories),
    }
    return finish_run(
        run_dir,
        record,
        config,
        "dagger",
        seed,
        model,
        evaluation.log.rows,
        budget,
        norm_path,
        summary_settings,
        started,
    )
