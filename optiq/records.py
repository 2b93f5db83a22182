"""What produced a run: ``run.json`` beside every stage's outputs.

It records the command line, resolved settings, seed, package versions, git commit and
dirty flag, host and device, start/end time, and the artifacts with their sha256.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from optiq.atomic_io import sha256_file, write_json
from optiq.config import REPO_ROOT

PACKAGES = ("optiq", "torch", "gymnasium", "mujoco", "stable-baselines3", "imitation", "numpy", "moviepy", "wandb")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    if commit is None and os.environ.get("OPTIQ_GIT_COMMIT"):
        # Inside the Docker image there is no .git; the build records the commit instead.
        return {"commit": os.environ["OPTIQ_GIT_COMMIT"], "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cuda": torch.cuda.is_available(),
    }
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunRecord:
    """Collects what a stage did and writes ``run.json`` (atomically) when it finishes."""

    def __init__(self, stage: str, out_dir: Path, config: dict[str, Any] | None, seed: int | None, **extra: Any):
        self.out_dir = Path(out_dir)
        self.data: dict[str, Any] = {
            "stage": stage,
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "seed": seed,
            "config": config,
            "versions": package_versions(),
            "git": git_state(),
            "device": device_info(),
            "started": now_iso(),
            "finished": None,
            "artifacts": {},
            **extra,
        }

    def add_artifact(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_file():
            key = str(path.relative_to(self.out_dir)) if path.is_relative_to(self.out_dir) else str(path)
            self.data["artifacts"][key] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}

    def finish(self, **results: Any) -> Path:
        self.data["finished"] = now_iso()
        self.data.update(results)
        return write_json(self.out_dir / "run.json", self.data)
