#!/usr/bin/env python
"""Cost of pixel observations: env steps/s with state vectors vs rendered camera frames.

Two side-by-side measurements on the same env, state and pixels interleaved (state, pixels,
state, ...) so machine load hits both alike, with the env's hparams.yml settings of each mode
(``--obs pixels`` applies the env's ``pixels`` overrides):

* ``env``: stepping the vec-env with random actions (pixels: MuJoCo render + grayscale + stack);
* ``ppo``: SB3 ``learn()`` of the PPO model stage 04 builds (state: MlpPolicy + VecNormalize;
  pixels: CnnPolicy), i.e. env steps, policy inference and the PPO updates.

Prints steps/s of each repetition and, last, ``ratio_env=`` and ``ratio_ppo=`` (state steps/s
divided by pixel steps/s, medians) measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from optiq.algos import build_model, make_training_venv
from optiq.config import load_env_config
from optiq.envs import make_task_vec
from optiq.seeding import seed_everything


def env_steps_per_s(config: dict[str, Any], steps: int, seed: int) -> float:
    venv = make_task_vec(config, 1, seed)
    venv.reset()
    rng = np.random.default_rng(seed)
    low, high = venv.action_space.low, venv.action_space.high
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(rng.uniform(low, high, size=(1, *venv.action_space.shape)))
    rate = steps / (time.perf_counter() - start)
    venv.close()
    return rate


def ppo_steps_per_s(config: dict[str, Any], steps: int, seed: int) -> float:
    seed_everything(seed)
    venv = make_training_venv(config, "ppo", seed)
    model = build_model(config, "ppo", venv, seed, device="cpu")
    start = time.perf_counter()
    model.learn(steps, progress_bar=False)
    rate = steps / (time.perf_counter() - start)
    venv.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="InvertedPendulum-v5")
    parser.add_argument("--env-steps", type=int, default=2000, help="random-action steps per repetition")
    parser.add_argument("--ppo-steps", type=int, default=2048, help="PPO learn() steps per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configs = {mode: load_env_config(args.env, "quick", obs_mode=mode) for mode in ("state", "pixels")}
    obs = configs["pixels"]["obs"]
    print(
        f"{args.env}: pixels are {obs['frame_stack']} stacked {obs['width']}x{obs['height']} "
        f"{'grayscale' if obs['grayscale'] else 'RGB'} frames"
    )
    results: dict[str, dict[str, list[float]]] = {kind: {"state": [], "pixels": []} for kind in ("env", "ppo")}
    for rep in range(args.repeats):
        for mode, config in configs.items():
            results["env"][mode].append(env_steps_per_s(config, args.env_steps, rep))
            results["ppo"][mode].append(ppo_steps_per_s(config, args.ppo_steps, rep))
        print(
            f"rep {rep}: env  state {results['env']['state'][-1]:8.0f}  pixels {results['env']['pixels'][-1]:7.0f}"
            f" steps/s | ppo  state {results['ppo']['state'][-1]:6.0f}  pixels {results['ppo']['pixels'][-1]:6.0f}"
            " steps/s"
        )
    for kind in ("env", "ppo"):
        state, pixels = statistics.median(results[kind]["state"]), statistics.median(results[kind]["pixels"])
        print(f"median {kind}: state {state:.0f} steps/s, pixels {pixels:.0f} steps/s")
    for kind in ("env", "ppo"):
        ratio = statistics.median(results[kind]["state"]) / statistics.median(results[kind]["pixels"])
        print(f"ratio_{kind}={ratio:.1f}")


if __name__ == "__main__":
    main()
