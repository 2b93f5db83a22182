"""BC checkpoints -> SB3 policy: same weights, same actions; and BC training itself."""

import numpy as np
import pytest
import torch as th

from optiq.algos import build_model, make_training_venv
from optiq.bc.train import list_bc_checkpoints, read_metrics, train_bc
from optiq.demos.storage import save_demos
from optiq.errors import OptiqError
from optiq.policies import PolicyFiles, load_model
from optiq.rl.transfer import copy_bc_weights


@pytest.fixture
def hopper_demos(tmp_path):
    from tests.helpers import synthetic_trajectories

    demos_dir = tmp_path / "01_demos"
    save_demos(demos_dir / "demos.npz", synthetic_trajectories(n=5, length=40))
    return demos_dir


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_bc_checkpoint_weights_transfer_exactly(tiny_config, hopper_demos, tmp_path, algo):
    checkpoints = train_bc(
        tiny_config, hopper_demos, tmp_path / "02_bc", seed=0, algo=algo, device="cpu", progress_bar=False
    )
    assert [c["epoch"] for c in checkpoints] == [1, 2]
    rows = read_metrics(tmp_path / "02_bc" / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "val_nll", "val_mse"} <= set(rows[0])

    files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "02_bc")[-1])
    bc_model = load_model(files, "cpu")
    venv = make_training_venv(tiny_config, algo, seed=3, norm_stats_path=files.vecnormalize)
    fresh = build_model(tiny_config, algo, venv, seed=3, device="cpu")
    report = copy_bc_weights(bc_model.policy, fresh.policy, algo)

    source, target = bc_model.policy.state_dict(), fresh.policy.state_dict()
    trained = [name for name, copied in report.copied_layers if copied]
    assert trained and report.random_init_layers
    for name, tensor in target.items():
        layer = name.rsplit(".", 1)[0] if "." in name else name
        if layer in trained:
            assert th.equal(tensor, source[name]), name
    obs = np.random.default_rng(0).normal(size=(8, 11)).astype(np.float32)
    np.testing.assert_array_equal(
        bc_model.predict(obs, deterministic=True)[0], fresh.predict(obs, deterministic=True)[0]
    )
    if algo == "ppo":
        assert "value_net" in report.random_init_layers and ("action_net", True) in report.copied_layers
    else:
        assert any(name.startswith("critic") for name in report.random_init_layers)


def test_checkpoint_from_other_architecture_is_a_clear_error(tiny_config):
    import copy

    other = copy.deepcopy(tiny_config)
    other["finetune"]["ppo"]["policy_kwargs"]["net_arch"] = {"pi": [16], "vf": [16]}
    venv = make_training_venv(tiny_config, "ppo", seed=0)
    small = build_model(other, "ppo", make_training_venv(other, "ppo", seed=0), seed=0, device="cpu")
    big = build_model(tiny_config, "ppo", venv, seed=0, device="cpu")
    with pytest.raises(OptiqError, match="BC checkpoint does not fit the RL policy"):
        copy_bc_weights(small.policy, big.policy, "ppo")


def test_bc_resumes_from_last_checkpoint(tiny_config, hopper_demos, tmp_path):
    out = tmp_path / "02_bc"
    train_bc(tiny_config, hopper_demos, out, seed=0, algo="ppo", device="cpu", progress_bar=False, n_epochs=2)
    first = (out / "checkpoints" / "epoch_0002.zip").stat().st_mtime_ns
    checkpoints = train_bc(
        tiny_config, hopper_demos, out, seed=0, algo="ppo", device="cpu", progress_bar=False, n_epochs=4
    )
    assert [c["epoch"] for c in checkpoints] == [1, 2, 3, 4]
    assert (out / "checkpoints" / "epoch_0002.zip").stat().st_mtime_ns == first  # not retrained
    assert [r["epoch"] for r in read_metrics(out / "metrics.csv")] == [1, 2, 3, 4]


def test_same_seed_gives_identical_bc_weights(tiny_config, hopper_demos, tmp_path):
    def weights(folder):
        train_bc(tiny_config, hopper_demos, folder, seed=5, algo="ppo", device="cpu", progress_bar=False)
        files = PolicyFiles.from_json(list_bc_checkpoints(folder)[-1])
        return load_model(files, "cpu").policy.state_dict()

    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(th.equal(a[k], b[k]) for k in a)
