"""AIRL and GAIL (imitation's adversarial trainers) with our tuned PPO as the generator.

The generator is the PPO that :func:`optiq.algos.build_model` builds from ``finetune.ppo``,
trained for the fine-tuning budget (rounded up to whole PPO rollouts, as ``PPO.learn`` does)
on the learned reward only; the true reward is used for nothing but evaluation, with the
same protocol as fine-tuning (``eval.eval_freq``, ``eval.n_eval_episodes``).

Observations stay raw (no VecNormalize): the discriminator compares generator transitions
with the demos' raw observations, and normalises its inputs itself (imitation's
``RunningNorm``). The saved policy therefore has no vecnormalize.pkl and is marked
``raw_obs`` so stage 05 evaluates it on raw observations too.

Episodes on locomotion tasks end early when the robot falls, so the trainers run with
``allow_variable_horizon=True``. imitation warns that termination then leaks reward
information: GAIL's always-positive reward acts as an alive bonus, AIRL's may not.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from imitation.algorithms.adversarial.airl import AIRL
from imitation.algorithms.adversarial.common import AdversarialTrainer
from imitation.algorithms.adversarial.gail import GAIL
from imitation.rewards.reward_nets import BasicRewardNet, BasicShapedRewardNet, NormalizedRewardNet, RewardNet
from imitation.util import logger as imit_logger
from imitation.util import networks
from rich.console import Console
from stable_baselines3.common.callbacks import CallbackList
from tqdm.auto import tqdm

from optiq.algos import build_model
from optiq.atomic_io import write_with
from optiq.demos.storage import load_demos
from optiq.envs import make_vec
from optiq.errors import OptiqError
from optiq.records import RunRecord
from optiq.rl.imitation_methods import (
    AdversarialSettings,
    adversarial_settings,
    finish_run,
    fresh_start,
    start_evaluation,
)
from optiq.seeding import seed_everything

console = Console()
TRAINERS: dict[str, type[AdversarialTrainer]] = {"airl": AIRL, "gail": GAIL}


def build_reward_net(init: str, settings: AdversarialSettings, venv: Any, gamma: float) -> RewardNet:
    """The discriminator's reward net: shaped for AIRL and plain for GAIL unless configured otherwise."""
    kind = settings.reward_net if settings.reward_net != "auto" else ("shaped" if init == "airl" else "basic")
    net: RewardNet
    if kind == "shaped":
        net = BasicShapedRewardNet(
            venv.observation_space,
            venv.action_space,
            reward_hid_sizes=settings.reward_hid_sizes,
            potential_hid_sizes=settings.potential_hid_sizes,
            discount_factor=gamma,
            normalize_input_layer=networks.RunningNorm,
        )
    else:
        net = BasicRewardNet(
            venv.observation_space,
            venv.action_space,
            hid_sizes=settings.reward_hid_sizes,
            normalize_input_layer=networks.RunningNorm,
        )
    if settings.normalize_reward:
        net = NormalizedRewardNet(net, networks.RunningNorm)
    return net


def train_adversarial(
    config: dict[str, Any],
    run_dir: Path,
    init: str,
    seed: int,
    demos_path: Path,
    total_timesteps: int | None = None,
    device: str = "auto",
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Train AIRL or GAIL from ``demos_path`` for the fine-tuning budget; write and return summary.json."""
    if init not in TRAINERS:
        raise OptiqError(f"unknown adversarial method '{init}'; choose one of: {', '.join(TRAINERS)}")
    total = int(total_timesteps or config["finetune"]["total_timesteps"])
    settings = adversarial_settings(config)
    finished = fresh_start(run_dir, config, init, total)
    if finished is not None:
        console.print(f"{run_dir.name} already finished at {finished['total_timesteps']:,} steps (--restart to redo)")
        return finished
    started = time.monotonic()
    record = RunRecord("04_finetune_rl", run_dir, config, seed, algo="ppo", init=init, total_timesteps=total)
    seed_everything(seed)

    venv = make_vec(config["env_id"], config["finetune"]["ppo"]["n_envs"], seed)
    trajectories = load_demos(demos_path, venv.observation_space, venv.action_space)
    n_transitions = sum(len(t.acts) for t in trajectories)
    if n_transitions < settings.demo_batch_size:
        raise OptiqError(
            f"only {n_transitions} demo transitions, fewer than imitation.adversarial.demo_batch_size="
            f"{settings.demo_batch_size} (collect more demos or lower it)"
        )
    model = build_model(config, "ppo", venv, seed, device=device)
    gamma = float(model.gamma)  # type: ignore[attr-defined]
    trainer = TRAINERS[init](
        demonstrations=trajectories,
        demo_batch_size=settings.demo_batch_size,
        demo_minibatch_size=settings.demo_minibatch_size,
        venv=venv,
        gen_algo=model,
        reward_net=build_reward_net(init, settings, venv, gamma),
        n_disc_updates_per_round=settings.n_disc_updates_per_round,
        gen_replay_buffer_capacity=settings.gen_replay_buffer_capacity,
        disc_opt_kwargs={"lr": settings.disc_learning_rate},
        custom_logger=imit_logger.configure(str(run_dir / "tb"), ["tensorboard"]),
        allow_variable_horizon=True,
    )
    evaluation = start_evaluation(model, make_vec(config["env_id"], 1, seed + 1000), run_dir, config, seed + 1000)
    trainer.gen_callback = CallbackList([c for c in (trainer.gen_callback, evaluation) if c is not None])

    round_steps = trainer.gen_train_timesteps
    n_rounds = math.ceil(total / round_steps)  # like PPO.learn: whole rollouts, at least the budget
    console.print(
        f"{init.upper()}: {n_rounds} rounds of {round_steps} env steps + {settings.n_disc_updates_per_round} "
        f"discriminator updates, {n_transitions} demo transitions"
    )
    evaluation.evaluate_at(0)
    for _ in tqdm(range(n_rounds), desc=f"{init.upper()} rounds", disable=not progress_bar):
        trainer.train_gen(round_steps)
        for _ in range(settings.n_disc_updates_per_round):
            with networks.training(trainer.reward_train):
                trainer.train_disc()
        trainer.logger.dump(int(model.num_timesteps))
    evaluation.evaluate_at(int(model.num_timesteps))

    write_with(run_dir / "reward_net.pt", lambda p: th.save(trainer.reward_train.state_dict(), p))
    summary_settings = {
        **{k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items()},
        "gen_train_timesteps": int(round_steps),
        "n_rounds": n_rounds,
        "n_demo_transitions": n_transitions,
        "demo_return_mean": float(np.mean([float(np.sum(t.rews)) for t in trajectories])),
    }
    return finish_run(
        run_dir, record, config, init, seed, model, evaluation.log.rows, total, None, summary_settings, started
    )
