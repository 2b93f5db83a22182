#!/usr/bin/env python
"""BC's minibatch loader vs imitation's own, side by side on the same demos and seed.

imitation's BC draws minibatches with a DataLoader that builds a dict per transition and
collates them; optiq's :func:`optiq.bc.train.minibatch_loader` draws the same indices and
fetches each minibatch with one array indexing. Both train the same policy from the same
seed for ``--epochs`` epochs, interleaved (imitation, optiq, imitation, ...) so machine load
hits both alike; time is the process's CPU time, single-threaded. Prints per-repetition
times, whether the trained weights are bit-identical, and last
``bc_loader_speedup=<imitation CPU s / optiq CPU s>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch as th
from imitation.algorithms import bc
from imitation.data import rollout

from optiq.algos import build_model
from optiq.bc.train import set_minibatch_demonstrations
from optiq.config import load_env_config
from optiq.demos.collect import collect_demos
from optiq.demos.storage import DEMOS_FILE, load_demos
from optiq.envs import make_vec
from optiq.paths import shipped_expert


def train(transitions, config, seed: int, epochs: int, minibatch: bool) -> tuple[float, list[th.Tensor]]:
    th.manual_seed(seed)
    model = build_model(config, "ppo", make_vec(config["env_id"], 1, seed=seed), seed, device="cpu")
    trainer = bc.BC(
        observation_space=model.observation_space,
        action_space=model.action_space,
        rng=np.random.default_rng(seed),
        policy=model.policy,
        demonstrations=None if minibatch else transitions,
        batch_size=config["bc"]["batch_size"],
        device="cpu",
    )
    if minibatch:
        set_minibatch_demonstrations(trainer, transitions)
    start = time.process_time()
    for _ in range(epochs):
        trainer.train(n_epochs=1, progress_bar=False, log_interval=10**9)
    return time.process_time() - start, [p.detach().clone() for p in model.policy.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--episodes", type=int, default=20, help="demo episodes of the shipped expert")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--outputs", default="outputs/bench/bc_loader")
    args = parser.parse_args()
    th.set_num_threads(1)
    config = load_env_config(args.env, "quick", overrides={"demos.n_episodes": args.episodes})
    demos_dir = f"{args.outputs}/{args.env}/01_demos"
    collect_demos(config, shipped_expert(args.env), demos_dir, args.episodes, seed=0, device="cpu")
    venv = make_vec(args.env, 1, seed=0)
    transitions = rollout.flatten_trajectories(
        load_demos(f"{demos_dir}/{DEMOS_FILE}", venv.observation_space, venv.action_space)
    )
    print(f"{args.env}: {len(transitions)} transitions, batch {config['bc']['batch_size']}, {args.epochs} epochs")
    times: dict[bool, list[float]] = {False: [], True: []}
    identical = True
    for repeat in range(args.repeats):
        weights = {}
        for minibatch in (False, True):
            cpu, weights[minibatch] = train(transitions, config, repeat, args.epochs, minibatch)
            times[minibatch].append(cpu)
        same = all(th.equal(a, b) for a, b in zip(weights[False], weights[True]))
        identical &= same
        print(f"repeat {repeat}: imitation {times[False][-1]:.2f} s, optiq {times[True][-1]:.2f} s, identical {same}")
    ratio = statistics.median(times[False]) / statistics.median(times[True])
    print(f"weights bit-identical on every repeat: {identical}")
    print(f"bc_loader_speedup={ratio:.2f}")


if __name__ == "__main__":
    main()
