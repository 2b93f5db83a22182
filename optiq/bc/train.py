"""Stage 02: behavioural cloning with imitation's ``bc.BC`` on a train/val split.

The cloned policy is ``model.policy`` of an SB3 model built by :func:`optiq.algos.build_model`
with the env's fine-tuning settings, and observations are normalised with VecNormalize
statistics computed from the training demos. So the BC policy has exactly the
architecture and observation preprocessing of the RL policy that stage 04 builds, and
its weights transfer without loss. Every ``checkpoint_every`` epochs a checkpoint
(model zip + vecnormalize.pkl + optimiser state) is written; a rerun resumes from it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from imitation.algorithms import bc
from imitation.data import rollout, types
from imitation.util import logger as imit_logger
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from torch.utils import data as th_data
from tqdm.auto import tqdm

from optiq.algos import algo_settings, build_model
from optiq.atomic_io import read_json, remove_stale_temp_files, write_json, write_text, write_with
from optiq.bc.sac_actor import SACActorForBC
from optiq.demos.storage import DEMOS_FILE, load_demos, split_episodes
from optiq.envs import make_task_vec, pixel_mode
from optiq.errors import OptiqError
from optiq.policies import PolicyFiles
from optiq.records import RunRecord
from optiq.seeding import seed_everything

# imitation logs its loss tensors with float(); harmless, but noisy on every batch.
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True", category=UserWarning)

METRICS_COLUMNS = ("epoch", "train_loss", "val_loss", "val_nll", "val_mse", "train_mse")
CHECKPOINTS_JSON = "checkpoints.json"


@dataclasses.dataclass
class BCSetup:
    """Everything BC trains: the SB3 model (its policy is cloned) and the data."""

    model: BaseAlgorithm
    trainable: Any  # the policy, or the SAC actor adapter
    vecnormalize: VecNormalize | None
    train: types.Transitions
    val: types.Transitions


def fit_observation_statistics(vecnorm: VecNormalize, obs: np.ndarray) -> None:
    """Set VecNormalize's observation mean/var from demo observations (what BC trains on)."""
    vecnorm.obs_rms.mean = obs.mean(axis=0).astype(np.float64)
    vecnorm.obs_rms.var = obs.var(axis=0).astype(np.float64)
    vecnorm.obs_rms.count = float(len(obs))


def _normalized(transitions: types.Transitions, vecnorm: VecNormalize | None) -> types.Transitions:
    if vecnorm is None:
        return transitions
    return dataclasses.replace(
        transitions,
        obs=vecnorm.normalize_obs(transitions.obs).astype(np.float32),
        next_obs=vecnorm.normalize_obs(transitions.next_obs).astype(np.float32),
    )


def build_bc_setup(config: dict[str, Any], algo: str, demos_path: Path, seed: int, device: str) -> BCSetup:
    """Load and split demos, fit observation statistics, and build the RL-shaped policy."""
    settings = algo_settings(config, algo)
    venv = make_task_vec(config, 1, seed)
    episodes = load_demos(demos_path, venv.observation_space, venv.action_space)
    train_eps, val_eps = split_episodes(episodes, config["bc"]["val_fraction"], seed)
    train, val = rollout.flatten_trajectories(train_eps), rollout.flatten_trajectories(val_eps or train_eps)
    vecnorm = None
    # Observations are always normalised for BC (except camera frames): SAC's actor cloned on
    # raw Hopper observations reached action MSE 0.023 and return 563, on normalised ones 0.0027
    # and 1,144 (the demonstrator's 1,186). Fine-tuning from BC keeps these statistics.
    if not pixel_mode(config):
        gamma = float(settings["hyperparams"].get("gamma", 0.99))
        vecnorm = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=gamma)
        fit_observation_statistics(vecnorm, train.obs)
        model_env = vecnorm
    else:
        model_env = venv
    model = build_model(config, algo, model_env, seed, device=device)
    trainable = SACActorForBC(model.policy) if algo == "sac" else model.policy
    return BCSetup(model, trainable, vecnorm, _normalized(train, vecnorm), _normalized(val, vecnorm))


class MinibatchTransitions(th_data.Dataset):
    """Transitions a DataLoader fetches one whole minibatch at a time (``__getitems__``).

    imitation's own loader builds a dict per sample and collates 256 of them per minibatch,
    about half of BC's training time on Hopper. Sampled with the same DataLoader settings
    (shuffle, drop_last) the indices are the same, and the batches hold the same values and
    types as ``types.transitions_collate_fn``'s, so training is unchanged (tested).
    """

    def __init__(self, transitions: types.Transitions):
        self.transitions = transitions

    def __len__(self) -> int:
        return len(self.transitions)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        idx = np.asarray(indices)
        t = self.transitions
        return {
            "obs": t.obs[idx],
            "acts": th.as_tensor(t.acts[idx]),
            "infos": [t.infos[i] for i in idx],
            "next_obs": t.next_obs[idx],
            "dones": th.as_tensor(t.dones[idx]),
        }


def _whole_batch(batch: dict[str, Any]) -> dict[str, Any]:
    return batch


def minibatch_loader(transitions: types.Transitions, batch_size: int) -> th_data.DataLoader:
    """A DataLoader over ``transitions`` drawing imitation's minibatches, fetched in one indexing each."""
    return th_data.DataLoader(
        MinibatchTransitions(transitions), batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=_whole_batch
    )


def set_minibatch_demonstrations(trainer: bc.BC, transitions: types.Transitions) -> None:
    """Give ``trainer`` :func:`minibatch_loader`'s batches without moving torch's RNG.

    imitation peeks at the first batch of an iterable it is given, which draws a shuffle
    from torch's global RNG; restoring the RNG keeps the epochs' shuffles where they were.
    """
    state = th.get_rng_state()
    trainer.set_demonstrations(minibatch_loader(transitions, trainer.minibatch_size))
    th.set_rng_state(state)


@th.no_grad()
def bc_metrics(
    trainable: Any, loss_calculator: bc.BehaviorCloningLossCalculator, data: types.Transitions
) -> dict[str, float]:
    """BC loss (imitation's), negative log-likelihood and deterministic action MSE on ``data``."""
    device = trainable.device
    obs = th.as_tensor(np.array(data.obs, dtype=np.float32), device=device)
    acts = th.as_tensor(np.array(data.acts, dtype=np.float32), device=device)
    metrics = loss_calculator(trainable, obs, acts)
    if isinstance(trainable, SACActorForBC):
        mean_action = trainable.mean_action(obs)
    else:
        mean_action = trainable.get_distribution(obs).mode()
    return {
        "loss": float(metrics.loss),
        "nll": float(metrics.neglogp),
        "mse": float(th.mean((mean_action - acts) ** 2)),
    }


def make_bc_trainer(
    policy: Any,
    settings: dict[str, Any],
    rng: np.random.Generator,
    device: Any,
    logger: imit_logger.HierarchicalLogger,
    demonstrations: Any = None,
) -> bc.BC:
    """imitation's BC on ``policy`` with an env's ``bc`` settings (batch size, learning rate, entropy and L2 weights).

    Stage 02 and DAgger both train this way, so DAgger's updates are stage 02's.
    """
    return bc.BC(
        observation_space=policy.observation_space,
        action_space=policy.action_space,
        rng=rng,
        policy=policy,
        demonstrations=demonstrations,
        batch_size=settings["batch_size"],
        optimizer_kwargs={"lr": settings["learning_rate"]},
        ent_weight=settings["ent_weight"],
        l2_weight=settings["l2_weight"],
        device=device,
        custom_logger=logger,
    )


def save_bc_checkpoint(setup: BCSetup, trainer: bc.BC, ckpt_dir: Path, epoch: int, algo: str) -> PolicyFiles:
    """Write model zip, statistics and optimiser state for ``epoch`` (each atomically)."""
    stem = f"epoch_{epoch:04d}"
    model_path = write_with(ckpt_dir / f"{stem}.zip", lambda p: setup.model.save(p))
    norm_path = None
    if setup.vecnormalize is not None:
        norm_path = write_with(ckpt_dir / f"{stem}_vecnormalize.pkl", lambda p: setup.vecnormalize.save(str(p)))
    write_with(
        ckpt_dir / f"{stem}_trainer.pt",
        lambda p: th.save({"optimizer": trainer.optimizer.state_dict(), "torch_rng": th.get_rng_state()}, p),
    )
    return PolicyFiles(model_path, norm_path, algo)


def list_bc_checkpoints(bc_dir: str | Path) -> list[dict[str, Any]]:
    """Checkpoints written by :func:`train_bc`, with their epoch and validation metrics."""
    index = Path(bc_dir) / CHECKPOINTS_JSON
    if not index.is_file():
        raise OptiqError(f"no BC checkpoints in {bc_dir} (run scripts/02_train_bc.py first)")
    entries = read_json(index)["checkpoints"]
    for entry in entries:  # stored relative to the BC folder, returned absolute
        entry["model"] = str(Path(bc_dir) / entry["model"])
        if entry.get("vecnormalize"):
            entry["vecnormalize"] = str(Path(bc_dir) / entry["vecnormalize"])
    return entries


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of ``metrics.csv``: ``epoch`` an int, the losses floats."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            {k: int(float(v)) if k == "epoch" else float(v) for k, v in row.items()} for row in csv.DictReader(handle)
        ]


def _write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def train_bc(
    config: dict[str, Any],
    demos_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    algo: str,
    device: str = "auto",
    progress_bar: bool = True,
    n_epochs: int | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train BC (resuming from the last checkpoint in ``out_dir``); return the checkpoint list."""
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    hp = config["bc"]
    n_epochs = int(n_epochs or hp["n_epochs"])
    record = RunRecord("02_train_bc", out_dir, config, seed, algo=algo, n_epochs=n_epochs)
    seed_everything(seed)
    remove_stale_temp_files(out_dir)
    setup = build_bc_setup(config, algo, Path(demos_dir) / DEMOS_FILE, seed, device)
    if len(setup.train) < hp["batch_size"]:
        raise OptiqError(
            f"only {len(setup.train)} training transitions, fewer than bc.batch_size={hp['batch_size']} "
            "(collect more demo episodes or lower bc.batch_size)"
        )
    trainer = make_bc_trainer(
        setup.trainable,
        hp,
        np.random.default_rng(seed),
        setup.model.device,
        imit_logger.configure(str(out_dir / "tb"), ["tensorboard"]),
    )
    set_minibatch_demonstrations(trainer, setup.train)

    checkpoints: list[dict[str, Any]] = []
    rows: list[dict[str, float]] = []
    start_epoch = 0
    if (out_dir / CHECKPOINTS_JSON).is_file() and (out_dir / "metrics.csv").is_file():
        # list_bc_checkpoints joins paths to out_dir; keep them relative to it, as the index stores them
        checkpoints = _relative(list_bc_checkpoints(out_dir), out_dir)
        if checkpoints:
            last = checkpoints[-1]
            _restore(setup, trainer, out_dir / last["model"], algo)
            start_epoch = int(last["epoch"])
            rows = [row for row in read_metrics(out_dir / "metrics.csv") if row["epoch"] <= start_epoch]

    bar = tqdm(
        range(start_epoch + 1, n_epochs + 1),
        desc="BC epochs",
        disable=not progress_bar,
        initial=start_epoch,
        total=n_epochs,
    )
    for epoch in bar:
        trainer.train(n_epochs=1, progress_bar=False, log_interval=10**9)
        train_m = bc_metrics(setup.trainable, trainer.loss_calculator, setup.train)
        val_m = bc_metrics(setup.trainable, trainer.loss_calculator, setup.val)
        rows.append(
            {
                "epoch": epoch,
                "train_loss": train_m["loss"],
                "val_loss": val_m["loss"],
                "val_nll": val_m["nll"],
                "val_mse": val_m["mse"],
                "train_mse": train_m["mse"],
            }
        )
        if on_epoch is not None:
            on_epoch(rows[-1])
        bar.set_postfix(
            train_loss=f"{train_m['loss']:.3f}", val_loss=f"{val_m['loss']:.3f}", val_mse=f"{val_m['mse']:.4f}"
        )
        if epoch % hp["checkpoint_every"] == 0 or epoch == n_epochs:
            files = save_bc_checkpoint(setup, trainer, ckpt_dir, epoch, algo)
            checkpoints = [c for c in checkpoints if c["epoch"] != epoch]
            entry = {"epoch": epoch, "algo": algo, "model": str(files.model.relative_to(out_dir))}
            entry["vecnormalize"] = str(files.vecnormalize.relative_to(out_dir)) if files.vecnormalize else None
            checkpoints.append({**entry, **{k: rows[-1][k] for k in METRICS_COLUMNS[1:]}})
            _write_metrics(out_dir / "metrics.csv", rows)
            write_json(out_dir / CHECKPOINTS_JSON, {"algo": algo, "checkpoints": checkpoints})
    for c in checkpoints:
        record.add_artifact(out_dir / c["model"])
    record.add_artifact(out_dir / "metrics.csv")
    record.finish(
        n_train_transitions=len(setup.train), n_val_transitions=len(setup.val), final=rows[-1] if rows else None
    )
    return list_bc_checkpoints(out_dir) if checkpoints else checkpoints


def _restore(setup: BCSetup, trainer: bc.BC, model_path: Path, algo: str) -> None:
    from optiq.policies import load_model

    saved = load_model(PolicyFiles(model_path, None, algo), device=str(setup.model.device))
    setup.model.policy.load_state_dict(saved.policy.state_dict())
    state_path = model_path.with_name(model_path.stem + "_trainer.pt")
    if state_path.is_file():
        state = th.load(state_path, weights_only=True)
        trainer.optimizer.load_state_dict(state["optimizer"])
        th.set_rng_state(state["torch_rng"])


def _relative(entries: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """Checkpoint paths relative to ``root`` (how checkpoints.json stores them), whether ``root`` and the
    paths are relative or absolute (an older index may hold absolute ones); a file outside stays absolute."""
    base = root.resolve()
    for entry in entries:
        for key in ("model", "vecnormalize"):
            if entry.get(key):
                path = Path(entry[key]).resolve()
                entry[key] = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
    return entries


def pretrain_with_bc(
    model: BaseAlgorithm, demos_path: Path, n_batches: int, batch_size: int, seed: int
) -> dict[str, float]:
    """``--bc-steps``: a short BC warm-up of an RL model's own policy on stage-01 demos (PPO only).

    The model's VecNormalize observation statistics are first set from the demos, so the
    policy is trained on the same preprocessing it will act with.
    """
    if not hasattr(model.policy, "evaluate_actions") or not hasattr(model.policy, "mlp_extractor"):
        raise OptiqError("--bc-steps works with PPO policies only (use stage 02 for SAC)")
    env = model.get_env()
    episodes = load_demos(demos_path, env.observation_space, env.action_space)
    transitions = rollout.flatten_trajectories(episodes)
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None:
        fit_observation_statistics(vecnorm, transitions.obs)
    data = _normalized(transitions, vecnorm)
    trainer = bc.BC(
        observation_space=model.policy.observation_space,
        action_space=model.policy.action_space,
        rng=np.random.default_rng(seed),
        policy=model.policy,
        demonstrations=data,
        batch_size=min(batch_size, len(data)),
        device=model.device,
        custom_logger=imit_logger.configure(None, []),
    )
    trainer.train(n_batches=n_batches, progress_bar=False, log_interval=10**9)
    return bc_metrics(model.policy, trainer.loss_calculator, data)
