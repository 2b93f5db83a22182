"""BC's minibatch loader draws imitation's own minibatches, only faster (bench/bc_loader.py)."""

import numpy as np
import torch as th
from imitation.algorithms import base as imitation_base
from imitation.algorithms import bc
from imitation.data import rollout

from optiq.bc.train import minibatch_loader, set_minibatch_demonstrations
from tests.helpers import synthetic_trajectories


def test_minibatches_equal_imitations_in_values_types_and_order():
    transitions = rollout.flatten_trajectories(synthetic_trajectories(n=4, length=80))
    th.manual_seed(3)
    ours = [batch for _, batch in zip(range(12), _epochs(minibatch_loader(transitions, 64)))]
    th.manual_seed(3)
    theirs = [batch for _, batch in zip(range(12), _epochs(imitation_base.make_data_loader(transitions, 64)))]
    assert len(ours) == len(theirs) == 12  # 5 minibatches per epoch: several epochs, several shuffles
    for mine, reference in zip(ours, theirs):
        assert set(mine) == set(reference)
        for key in ("obs", "next_obs"):
            assert type(mine[key]) is type(reference[key]) and np.array_equal(mine[key], reference[key])
        for key in ("acts", "dones"):
            assert mine[key].dtype == reference[key].dtype and th.equal(mine[key], reference[key])
        assert list(mine["infos"]) == list(reference["infos"])


def test_giving_the_loader_to_bc_leaves_torchs_rng_where_it_was():
    transitions = rollout.flatten_trajectories(synthetic_trajectories(n=4, length=80))
    from stable_baselines3 import PPO

    from optiq.envs import make_vec

    policy = PPO("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), device="cpu").policy
    trainer = bc.BC(
        observation_space=policy.observation_space,
        action_space=policy.action_space,
        rng=np.random.default_rng(0),
        policy=policy,
        batch_size=64,
        device="cpu",
    )
    before = th.get_rng_state()
    set_minibatch_demonstrations(trainer, transitions)  # imitation peeks at a batch: a shuffle
    assert th.equal(before, th.get_rng_state())


def _epochs(loader):
    while True:
        yield from loader
