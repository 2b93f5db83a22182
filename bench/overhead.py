#!/usr/bin/env python
"""Overhead of optiq's stage-04 fine-tuning vs a bare SB3 ``learn()`` on the same env and config.

Two comparisons, each interleaved (bare, optiq, bare, optiq, ...) so machine load hits both
sides alike, all single-threaded, for ``--algo`` (default: the env's ``run.algo``):

* ``scratch``: the real ``optiq.rl.finetune.finetune`` from scratch (checkpointing,
  CSV/TensorBoard logging, run records) vs SB3's PPO or SAC with the same settings;
* ``bc``: the BC -> RL method of that algorithm (``--init bc``; ``ppo``: HybridPPO with the
  env's ``finetune.ppo.bc_rl``, its demo passes included; ``sac``: DemoSAC with
  ``finetune.sac.bc_rl``: demo-mixed replay, BC anchor, LayerNorm critics where set, averaged
  policy) vs the same bare SB3 algorithm. The critic warm-up is switched off so every step pays
  for the extensions. For SAC, ``learning_starts`` is 0 on every side so every step trains.

Periodic evaluation is off (it is a feature that costs env steps, not overhead); the
start/end evaluations are one episode. Demos (5 episodes of the shipped expert) and a short BC
are made once, untimed. Prints steps/s of each repetition and, last, the two ratios
``overhead_ratio=<optiq scratch/bare> bc_overhead_ratio=<optiq bc/bare>`` (targets >= 0.95, >= 0.8).

  python bench/overhead.py --steps 16384 --repeats 3              # Hopper-v5's default method (PPO)
  python bench/overhead.py --algo sac --steps 2048 --repeats 3    # DemoSAC against bare SAC
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from optiq.algos import build_model, make_training_venv
from optiq.bc.train import list_bc_checkpoints, train_bc
from optiq.config import load_env_config
from optiq.demos.collect import collect_demos
from optiq.paths import shipped_expert
from optiq.policies import PolicyFiles
from optiq.rl.finetune import finetune
from optiq.seeding import seed_everything


def bare_sb3(config: dict, algo: str, steps: int, seed: int) -> float:
    seed_everything(seed)
    venv = make_training_venv(config, algo, seed)
    model = build_model(config, algo, venv, seed, device="cpu")
    start = time.perf_counter()
    model.learn(steps, progress_bar=False)
    return steps / (time.perf_counter() - start)


def optiq_finetune(
    config: dict, algo: str, steps: int, seed: int, folder: Path, init: str, bc: PolicyFiles | None
) -> float:
    demos = folder.parent / "demos" / "demos.npz"
    start = time.perf_counter()
    finetune(
        config, folder, algo, init, seed, bc, total_timesteps=steps, device="cpu", progress_bar=False, demos_path=demos
    )
    return steps / (time.perf_counter() - start)


def prepare_bc(config: dict, algo: str, root: Path) -> PolicyFiles:
    expert = shipped_expert(config["env_id"])
    if expert is None:
        raise SystemExit(f"no shipped expert for {config['env_id']}: the bc comparison needs demos")
    collect_demos(config, expert, root / "demos", n_episodes=5, seed=0, device="cpu")
    bc_config = {**config, "bc": {**config["bc"], "n_epochs": 5, "checkpoint_every": 5}}
    train_bc(bc_config, root / "demos", root / "bc", seed=0, algo=algo, device="cpu", progress_bar=False)
    return PolicyFiles.from_json(list_bc_checkpoints(root / "bc")[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=16384, help="env steps per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--algo", choices=("ppo", "sac"), help="default: the env's run.algo")
    args = parser.parse_args()
    algo = args.algo or load_env_config(args.env, "full")["run"]["algo"]
    overrides: dict = {
        "eval.eval_freq": 0,
        "eval.n_eval_episodes": 1,
        "finetune.checkpoint_freq": args.steps // 4,
        f"finetune.{algo}.bc_rl.critic_warmup_steps": 0,
        f"finetune.{algo}.bc_rl.actor_lr_warmup_steps": 0,
        # the return-driven anchor needs the warm-up for its reference; what it adds per step is one
        # scalar per finished episode, so without it every step still pays for the BC and demo passes
        f"finetune.{algo}.bc_rl.bc_reference_episodes": 0,
    }
    if algo == "sac":
        # SB3's SAC does no gradient step before learning_starts; DemoSAC's bc_rl sets it to 0
        overrides["finetune.sac.hyperparams.learning_starts"] = 0
    config = load_env_config(args.env, "full", overrides=overrides)
    print(f"{args.env} {algo}: bc_rl = {config['finetune'][algo]['bc_rl']}")
    bare: list[float] = []
    ours: dict[str, list[float]] = {"scratch": [], "bc": []}
    with tempfile.TemporaryDirectory() as tmp:
        bc = prepare_bc(config, algo, Path(tmp))
        for rep in range(args.repeats):
            bare.append(bare_sb3(config, algo, args.steps, seed=rep))
            for init in ("scratch", "bc"):
                run_dir = Path(tmp) / f"{init}{rep}"
                bc_files = bc if init == "bc" else None
                ours[init].append(optiq_finetune(config, algo, args.steps, rep, run_dir, init, bc_files))
            print(
                f"rep {rep}: bare SB3 {bare[-1]:7.1f} steps/s   optiq scratch {ours['scratch'][-1]:7.1f}   "
                f"optiq bc {ours['bc'][-1]:7.1f}"
            )
    med = {k: statistics.median(v) for k, v in ours.items()}
    base = statistics.median(bare)
    print(f"median steps/s: bare {base:.1f}, optiq scratch {med['scratch']:.1f}, optiq bc {med['bc']:.1f}")
    print(f"overhead_ratio={med['scratch'] / base:.3f} bc_overhead_ratio={med['bc'] / base:.3f}")


if __name__ == "__main__":
    main()
