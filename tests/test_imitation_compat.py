"""imitation 1.0.1 is installed with --no-deps beside newer gymnasium/SB3: prove it still works."""

import importlib.metadata

import numpy as np
import torch as th
from imitation.algorithms import bc
from imitation.data import rollout, types
from imitation.data.wrappers import RolloutInfoWrapper
from stable_baselines3 import PPO

from optiq.envs import make_vec


def test_versions_are_the_ones_we_pin():
    assert importlib.metadata.version("imitation") == "1.0.1"
    assert importlib.metadata.version("gymnasium").startswith("1.")
    assert importlib.metadata.version("stable-baselines3").startswith("2.")


def test_rollout_and_bc_work_with_our_gymnasium_and_sb3():
    venv = make_vec("Hopper-v5", 1, seed=0, wrapper_class=lambda env: RolloutInfoWrapper(env))

    def scripted(obs, state=None, episode_start=None):  # a deterministic "expert": a fixed linear map
        return np.tanh(obs[:, :3]), None

    trajectories = rollout.generate_trajectories(
        scripted, venv, rollout.make_sample_until(min_episodes=3), rng=np.random.default_rng(0)
    )
    assert len(trajectories) >= 3
    assert isinstance(trajectories[0], types.TrajectoryWithRew)
    assert trajectories[0].obs.shape[1:] == (11,) and trajectories[0].acts.shape[1:] == (3,)
    transitions = rollout.flatten_trajectories(trajectories)

    th.manual_seed(0)
    model = PPO("MlpPolicy", venv, seed=0, policy_kwargs={"net_arch": [32, 32]})
    trainer = bc.BC(
        observation_space=venv.observation_space,
        action_space=venv.action_space,
        rng=np.random.default_rng(0),
        policy=model.policy,
        demonstrations=transitions,
        batch_size=32,
    )
    obs = th.as_tensor(transitions.obs)
    acts = th.as_tensor(transitions.acts)
    with th.no_grad():
        before = float(trainer.loss_calculator(model.policy, obs, acts).loss)
    trainer.train(n_epochs=5, progress_bar=False)
    with th.no_grad():
        after = float(trainer.loss_calculator(model.policy, obs, acts).loss)
        mse = float(((model.policy.get_distribution(obs).mode() - acts) ** 2).mean())
    assert after < before - 0.5, (before, after)
    assert trainer.policy is model.policy  # trained in place: the RL algorithm's own policy
    assert mse < float((acts**2).mean())  # better than predicting zeros
