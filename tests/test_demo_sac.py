"""Demo-seeded SAC: the buffer mixes the configured fraction of demos; warm-up trains critics only."""

import numpy as np
import pytest
import torch as th

from optiq.envs import make_vec
from optiq.rl.demo_sac import DemoMixReplayBuffer, DemoSAC
from tests.conftest import synthetic_trajectories

KWARGS = dict(learning_starts=0, batch_size=64, seed=0, device="cpu", policy_kwargs={"net_arch": [32, 32]})


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_buffer_samples_the_configured_fraction_of_demos(fraction):
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), demo_fraction=fraction, **KWARGS)
    demos = synthetic_trajectories(n=2, length=40)
    model.set_demonstrations(demos)
    model.learn(100)  # fills the online part
    buffer = model.replay_buffer
    assert isinstance(buffer, DemoMixReplayBuffer)
    batch = buffer.sample(256)
    demo_obs = th.as_tensor(np.concatenate([t.obs[:-1] for t in demos]))
    from_demos = sum(bool((demo_obs == row).all(dim=1).any()) for row in batch.observations)
    assert from_demos == round(256 * fraction)
    assert batch.observations.shape[0] == 256


def test_only_demos_before_any_online_data():
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    assert model.replay_buffer.sample(32).observations.shape == (32, 11)


def test_critic_warmup_keeps_the_actor():
    model = DemoSAC("MlpPolicy", make_vec("Hopper-v5", 1, seed=0), critic_warmup_steps=10_000, **KWARGS)
    model.set_demonstrations(synthetic_trajectories(n=2, length=40))
    actor_before = {k: v.clone() for k, v in model.actor.state_dict().items()}
    critic_before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    log_ent_before = model.log_ent_coef.detach().clone()
    model.learn(200)
    assert all(th.equal(actor_before[k], v) for k, v in model.actor.state_dict().items())
    assert th.equal(log_ent_before, model.log_ent_coef.detach())
    assert any(not th.equal(critic_before[k], v) for k, v in model.critic.state_dict().items())
