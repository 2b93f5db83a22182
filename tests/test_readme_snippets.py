"""The README's "Loading what a run wrote, without optiq" snippets run as printed, without optiq."""

import json
import re
import subprocess
import sys

import numpy as np

from optiq.bc.train import list_bc_checkpoints, train_bc
from optiq.demos.storage import load_demos, save_demos
from optiq.policies import PolicyFiles
from optiq.rl.finetune import finetune
from tests.helpers import REPO, synthetic_trajectories

BLOCK_OPTIQ = 'import sys\nsys.modules["optiq"] = None  # any use of optiq now raises\n'


def _snippets() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Loading what a run wrote") :]
    section = section[: section.index("\n## ")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", BLOCK_OPTIQ + code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_has_both_snippets():
    snippets = _snippets()
    assert len(snippets) == 2
    assert "PPO.load" in snippets[0] and "np.load" in snippets[1]


def test_the_stock_sb3_snippet_evaluates_a_fine_tuned_run(tiny_config, tmp_path):
    save_demos(tmp_path / "demos" / "demos.npz", synthetic_trajectories(n=4, length=80))
    train_bc(tiny_config, tmp_path / "demos", tmp_path / "bc", seed=0, algo="ppo", device="cpu", progress_bar=False)
    bc_files = PolicyFiles.from_json(list_bc_checkpoints(tmp_path / "bc")[-1])
    tiny_config["finetune"]["ppo"]["bc_rl"].update(critic_warmup_steps=0, bc_reference_episodes=0)
    run = tmp_path / "run"
    finetune(
        tiny_config,
        run,
        "ppo",
        "bc",
        0,
        bc_files,
        512,
        device="cpu",
        progress_bar=False,
        demos_path=tmp_path / "demos" / "demos.npz",
    )
    code = _snippets()[0]
    assert code.count('"outputs/Hopper-v5/quick/04_finetune/ppo_bc_seed0"') == 1
    code = code.replace('"outputs/Hopper-v5/quick/04_finetune/ppo_bc_seed0"', repr(str(run)))
    code = code.replace("n_eval_episodes=10", "n_eval_episodes=1")
    line = _run(code).strip().splitlines()[-1]
    mean, std = map(float, re.fullmatch(r"return (\S+) \+/- (\S+)", line).groups())
    assert np.isfinite(mean) and std == 0.0


def test_the_demos_snippet_rebuilds_the_episodes(tmp_path):
    episodes = synthetic_trajectories(n=3, length=7)  # terminal and truncated episodes
    path = save_demos(tmp_path / "demos.npz", episodes)
    code = _snippets()[1]
    assert code.count('"outputs/Hopper-v5/quick/01_demos/demos.npz"') == 1
    code = code.replace('"outputs/Hopper-v5/quick/01_demos/demos.npz"', repr(str(path)))
    code += (
        "\nimport json\nprint(json.dumps([{'obs': t.obs.tolist(), 'acts': t.acts.tolist(), "
        "'rews': t.rews.tolist(), 'terminal': t.terminal} for t in demos]))\n"
    )
    rebuilt = json.loads(_run(code).strip().splitlines()[-1])
    expected = load_demos(path)
    assert len(rebuilt) == len(expected) == 3
    for got, want in zip(rebuilt, expected):
        np.testing.assert_array_equal(np.asarray(got["obs"], np.float32), want.obs)
        np.testing.assert_array_equal(np.asarray(got["acts"], np.float32), want.acts)
        np.testing.assert_array_equal(np.asarray(got["rews"], np.float32), want.rews)
        assert got["terminal"] == want.terminal
