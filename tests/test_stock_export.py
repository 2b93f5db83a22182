"""Final and best policies load in stock SB3 without optiq and reproduce optiq's evaluation."""

import json
import subprocess
import sys

import pytest

from optiq.bc.train import list_bc_checkpoints, train_bc
from optiq.demos.storage import save_demos
from optiq.policies import PolicyFiles, eval_venv_for, load_model
from optiq.rl.finetune import finetune
from optiq.rl.training import evaluate_returns
from tests.helpers import synthetic_trajectories

# Runs in a fresh interpreter where `import optiq` fails: only SB3, gymnasium and torch are available.
STOCK_EVAL = """
import json, sys
sys.modules["optiq"] = None  # any pickled reference to optiq would now raise
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize
algo, model_path, norm_path, seed, episodes = sys.argv[1:6]
model = {"ppo": PPO, "sac": SAC}[algo].load(model_path, device="cpu")
venv = make_vec_env("Hopper-v5", n_envs=1, seed=int(seed))
if norm_path != "-":
    venv = VecNormalize.load(norm_path, venv)
    venv.training, venv.norm_reward = False, False
returns, _ = evaluate_policy(model, venv, n_eval_episodes=int(episodes), deterministic=True,
                             return_episode_rewards=True, warn=False)
print(json.dumps({"class": type(model).__name__, "returns": [float(r) for r in returns]}))
"""


def _stock_eval(algo, files, seed, episodes=2):
    norm = str(files["vecnormalize"]) if files["vecnormalize"] else "-"
    out = subprocess.run(
        [sys.executable, "-c", STOCK_EVAL, algo, files["model"], norm, str(seed), str(episodes)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_bc_rl_policies_load_in_stock_sb3_and_evaluate_the_same(algo, tiny_config, tmp_path):
    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(tiny_config, tmp_path / "demos", tmp_path / "bc", seed=0, algo=algo, device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    tiny_config["finetune"]["ppo"]["bc_rl"].update(critic_warmup_steps=0, bc_reference_episodes=0, mix_ratio=0.25)
    summary = finetune(
        tiny_config,
        tmp_path / "run",
        algo,
        "bc",
        0,
        bc_files,
        300 if algo == "sac" else 512,
        device="cpu",
        progress_bar=False,
        demos_path=tmp_path / "demos" / "demos.npz",
    )
    for key in ("policy", "best_policy"):
        files = summary[key]
        stock = _stock_eval(algo, files, seed=123)
        assert stock["class"] == algo.upper()
        ours, _ = evaluate_returns(
            load_model(PolicyFiles.from_json(files), "cpu"),
            eval_venv_for(tiny_config, PolicyFiles.from_json(files), seed=123),
            2,
        )
        assert stock["returns"] == pytest.approx(list(ours))


def test_layer_norm_critics_stay_behind_and_the_actor_transfers():
    import numpy as np
    from stable_baselines3 import SAC
    from stable_baselines3.sac.policies import SACPolicy

    from optiq.envs import make_vec
    from optiq.rl.demo_sac import DemoSAC, LayerNormCritic
    from optiq.rl.export import stock_model

    model = DemoSAC(
        "MlpPolicy", make_vec("Hopper-v5", 1, seed=0), critic_layer_norm=True, learning_starts=0, device="cpu"
    )
    assert isinstance(model.critic, LayerNormCritic)
    stock = stock_model(model)
    assert type(stock) is SAC and type(stock.policy) is SACPolicy
    obs = np.random.default_rng(0).normal(size=(5, 11)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], stock.predict(obs, deterministic=True)[0])
