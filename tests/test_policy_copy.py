"""frozen_policy_copy: same weights and shapes as the policy, gSDE included, and frozen."""

import pytest
import torch as th
from stable_baselines3 import PPO, SAC

from optiq.envs import make_vec
from optiq.rl.policy_copy import frozen_policy_copy


@pytest.mark.parametrize("algo", [PPO, SAC])
@pytest.mark.parametrize("use_sde", [False, True])
def test_copy_holds_the_policy_weights_and_is_frozen(algo, use_sde):
    model = algo(
        "MlpPolicy",
        make_vec("Hopper-v5", 1, seed=0),
        use_sde=use_sde,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16, 16]},
    )
    copy = frozen_policy_copy(model)
    original = model.policy.state_dict()
    assert copy.state_dict().keys() == original.keys()
    assert all(th.equal(v, original[k]) for k, v in copy.state_dict().items())
    assert not copy.training and copy.optimizer is None
    assert not any(p.requires_grad for p in copy.parameters())
    with th.no_grad():  # a copy, not a view: changing the policy leaves it alone
        next(model.policy.parameters()).add_(1.0)
    assert not th.equal(next(copy.parameters()), next(model.policy.parameters()))
