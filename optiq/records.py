"""What produced a run: ``run.json`` beside every stage's outputs, and ``fingerprint.json``.

``run.json`` records the command line, resolved settings, seed, package versions, git commit
and dirty flag, host and device, start/end time, and the artifacts with their sha256.
``fingerprint.json`` (see :func:`make_fingerprint`) records what the stage's result depends
on; outputs whose fingerprint differs from the current one are never reused.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from optiq.atomic_io import read_json, sha256_file, write_json
from optiq.config import IN_CHECKOUT, REPO_ROOT

PACKAGES = ("optiq", "torch", "gymnasium", "mujoco", "stable-baselines3", "imitation", "numpy", "moviepy", "wandb")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state(root: Path | None = None) -> dict[str, Any]:
    """The commit (and whether the tree is dirty) of the checkout at ``root`` (default: optiq's own checkout).

    An installed wheel has no checkout: never ask git there (the folder around site-packages may be
    some other repository); the commit is None unless ``OPTIQ_GIT_COMMIT`` names it.
    """
    if root is None and IN_CHECKOUT:
        root = REPO_ROOT

    def _git(*args: str) -> str | None:
        if root is None:
            return None
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


# --- Stage fingerprints: when may a stage's outputs be reused? -------------------------------
#
# A stage's outputs are reused (run_all skips them, a script resumes them) only if the
# ``fingerprint.json`` beside them equals the fingerprint the current settings give. A
# fingerprint holds exactly what the stage's result depends on: the settings it reads (dotted
# hparams.yml keys, after the preset and --set), its seed, the identity (sha256) of the input
# files it reads (demos, BC checkpoints, policies), and the stage's code version below. The
# functions that build them live beside each stage (``*_fingerprint`` in optiq/*/pipeline.py).
#
# Bump a stage's code version whenever its outputs would differ for the same settings and inputs
# (a changed training loop, file layout, evaluation protocol, report format): every stored
# result of that stage, and so everything downstream of it, is then redone by run_all.
STAGE_CODE_VERSIONS = {"demos": 1, "bc": 1, "select": 1, "finetune": 1, "eval": 1, "compare": 4}
FINGERPRINT_FILE = "fingerprint.json"

_sha_cache: dict[tuple[str, int, int], str] = {}


def file_identity(path: str | Path | None) -> str | None:
    """sha256 of a file (cached by path, size and mtime), ``"missing"`` if absent, None for no path."""
    if path is None:
        return None
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _sha_cache:
        _sha_cache[key] = sha256_file(path)
    return _sha_cache[key]


def pick_settings(config: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The values of dotted ``keys`` of ``config`` as a nested dict (a missing key: None)."""
    picked: dict[str, Any] = {}
    for dotted in keys:
        value: Any = config
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        node = picked
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)  # a fingerprint never aliases (and so never edits) the config
    return picked


def make_fingerprint(
    stage: str,
    settings: dict[str, Any],
    seed: int | None = None,
    inputs: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """A stage's fingerprint, normalised through JSON (so it compares equal to one read back from disk).

    ``settings``: hparams values by their hparams.yml path (nested dicts) plus stage options;
    ``inputs``: a name -> :func:`file_identity` of each input file.
    """
    data = {
        "stage": stage,
        "code_version": STAGE_CODE_VERSIONS[stage],
        "seed": seed,
        "settings": settings,
        "inputs": inputs or {},
    }
    return json.loads(json.dumps(data, default=_json_default, sort_keys=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_fingerprint(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / FINGERPRINT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_fingerprint(folder: str | Path, fingerprint: dict[str, Any]) -> Path:
    return write_json(Path(folder) / FINGERPRINT_FILE, fingerprint)


def remove_fingerprint(folder: str | Path) -> None:
    (Path(folder) / FINGERPRINT_FILE).unlink(missing_ok=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _show(value: Any) -> str:
    return "unset" if value is None else json.dumps(value) if isinstance(value, (dict, list, str)) else str(value)


INPUT_TITLES = {
    "demos": "the demos",
    "bc_checkpoints": "the BC checkpoints",
    "bc_model": "the selected BC checkpoint",
    "bc_vecnormalize": "the selected BC checkpoint's observation statistics",
    "policy": "the policy",
    "policy_vecnormalize": "the policy's observation statistics",
    "expert": "the expert",
    "pretrained": "the pretrained encoder",
}


def fingerprint_changes(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Why ``stored`` differs from ``current``, one phrase per difference (empty: they are equal).

    Settings read as ``finetune.ppo.bc_rl.bc_coeff changed 1.0 -> 0.5``; inputs as ``the demos
    changed``; a new code version as ``the bc stage's code changed (version 1 -> 2)``.
    """
    if stored is None:
        return ["no fingerprint.json (written by an older optiq or unfinished)"]
    changes = []
    if stored.get("code_version") != current["code_version"]:
        changes.append(
            f"the {current['stage']} stage's code changed (version {stored.get('code_version')} -> "
            f"{current['code_version']})"
        )
    if stored.get("seed") != current["seed"]:
        changes.append(f"seed changed {_show(stored.get('seed'))} -> {_show(current['seed'])}")
    old, new = _flatten(stored.get("settings") or {}), _flatten(current["settings"])
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changes.append(f"{key} changed {_show(old.get(key))} -> {_show(new.get(key))}")
    old_in, new_in = stored.get("inputs") or {}, current["inputs"]
    for name in sorted(set(old_in) | set(new_in)):
        if old_in.get(name) != new_in.get(name):
            changes.append(f"{INPUT_TITLES.get(name, name)} changed")
    return changes


def stale_reason(stored: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """The first difference (and how many more), or None when the fingerprints are equal."""
    changes = fingerprint_changes(stored, current)
    if not changes:
        return None
    return changes[0] + (f" (and {len(changes) - 1} more)" if len(changes) > 1 else "")


def run_finished(run_json: Path) -> bool:
    """Whether a stage's run.json says it finished (a crash or Ctrl-C leaves it unfinished)."""
    try:
        return run_json.is_file() and bool(read_json(run_json).get("finished"))
    except (OSError, ValueError):
        return False
