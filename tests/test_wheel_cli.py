"""The ``optiq`` command works from an installed wheel, away from the checkout.

The wheel is built from a copy of the checkout (so no build/ folder lands in it), installed with
``pip --target`` and run from another folder with only that install on PYTHONPATH: its commands
are modules of optiq.commands, and hparams.yml and the shipped experts travel inside the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

# What a source distribution of optiq holds: the package (optiq/hparams.yml and optiq/experts are
# symlinks to the two data paths beside it), the data, and what pyproject.toml reads.
SOURCES = ("pyproject.toml", "README.md", "hparams.yml", "experts", "optiq")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "checkpoints", "tb", "best")


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """``optiq`` installed from a freshly built wheel into its own folder; returns that folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=JUNK)
        else:
            shutil.copy2(path, src / name)
    assert (src / "optiq" / "hparams.yml").is_symlink() and (src / "optiq" / "experts").is_symlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"), str(src)],
        capture_output=True,
        text=True,
        cwd=src,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (root / "dist").glob("optiq-*.whl")
    site = root / "site"
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return site


def _run(site: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess:
    dropped = ("PYTHONPATH", "OPTIQ_GIT_COMMIT", "MUJOCO_GL", "PYOPENGL_PLATFORM")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(PYTHONPATH=str(site), PYTHONWARNINGS="ignore", COLUMNS="200")
    return subprocess.run(list(command), capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_the_installed_package_is_the_wheels_and_carries_its_data(wheel_site, tmp_path):
    code = (
        "import json, optiq, optiq.config as c, optiq.paths as p, optiq.records as r;"
        "print(json.dumps({'file': optiq.__file__, 'hparams': str(c.DEFAULT_HPARAMS), 'checkout': c.IN_CHECKOUT,"
        "'expert': str(p.shipped_expert('Hopper-v5')), 'outputs': str(p.DEFAULT_OUTPUTS), 'git': r.git_state(),"
        "'envs': c.available_envs(), 'gl': __import__('os').environ.get('MUJOCO_GL')}))"
    )
    result = _run(wheel_site, tmp_path, sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    package = wheel_site / "optiq"
    assert Path(info["file"]) == package / "__init__.py"  # not the checkout's optiq
    assert not info["checkout"]
    assert Path(info["hparams"]) == package / "hparams.yml"
    assert not (package / "hparams.yml").is_symlink()  # a copy of the checkout's file, not a link to it
    assert (package / "hparams.yml").read_bytes() == (REPO / "hparams.yml").read_bytes()
    assert "Hopper-v5" in info["envs"]
    assert Path(info["expert"]) == package / "experts" / "Hopper-v5"
    assert (package / "experts" / "Hopper-v5" / "expert.zip").is_file()
    assert Path(info["outputs"]) == tmp_path / "outputs"  # the working directory's, not site-packages'
    assert info["git"] == {"commit": None, "dirty": None}
    assert info["gl"] is None  # importing optiq leaves MUJOCO_GL alone


def test_the_cli_runs_from_the_wheel(wheel_site, tmp_path):
    python = [sys.executable, "-m", "optiq"]
    usage = _run(wheel_site, tmp_path, *python, "--help")
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith("usage: optiq COMMAND [flags]")
    for name in ("collect-demos", "train-bc", "select-best", "finetune", "train rl", "eval-video", "run-all", "sweep"):
        assert f"  {name} " in usage.stdout
    assert _run(wheel_site, tmp_path, *python, "no-such-command").returncode == 2

    hparams = str(wheel_site / "optiq" / "hparams.yml")
    for command, flag in (("run-all", "--demos-per-seed"), ("finetune", "--critic-warmup-steps")):
        result = _run(wheel_site, tmp_path, *python, command, "--help")
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert text.startswith(f"usage: optiq {command} [-h]"), text[:200]
        assert flag in text and f"(default: {hparams})" in text

    script = wheel_site / "bin" / "optiq"
    if script.is_file():  # the console script pip generated
        result = _run(wheel_site, tmp_path, str(script), "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: optiq COMMAND [flags]")
