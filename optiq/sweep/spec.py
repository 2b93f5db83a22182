"""A study: which envs (each with its demo source), which methods and seeds, at which preset.

Written as YAML (``--spec study.yml``) or as flags of ``scripts/sweep.py``; both give a
:class:`SweepSpec`. Example::

    envs:
      - Hopper-v5                       # demos from the shipped expert
      - {env: Ant-v5, source: scripted} # demos from the trot gait in hparams.yml
    methods: [bc_only, bc_rl, scratch]
    seeds: [0, 1, 2]
    preset: quick
    set: ["finetune.total_timesteps=50000"]
    run_name: study
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optiq.compare.methods import DEFAULT_METHODS, parse_methods
from optiq.config import DEFAULT_HPARAMS, PRESETS
from optiq.errors import OptiqError

SOURCES = ("expert", "scripted", "minari")
SPEC_KEYS = ("envs", "methods", "seeds", "preset", "algo", "set", "run_name", "hparams", "device", "video")
ENV_KEYS = ("env", "source", "controller", "dataset", "names", "expert")


@dataclass
class EnvEntry:
    """One env of the study and where its demos come from (the flags of 01_collect_demos.py)."""

    env_id: str
    source: str = "expert"
    controller: str | None = None
    dataset: str | None = None
    names: list[str] | None = None
    expert: Path | None = None


@dataclass
class SweepSpec:
    """Everything that defines a study; each env runs run_all's stages with these settings."""

    envs: list[EnvEntry]
    methods: tuple[str, ...] = DEFAULT_METHODS
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    preset: str = "quick"
    algo: str | None = None  # None: each env's run.algo
    overrides: list[str] = field(default_factory=list)
    run_name: str = "study"
    hparams: Path = DEFAULT_HPARAMS
    device: str = "auto"  # each job's torch device; "cuda" also asks Ray for a GPU per job
    video: bool = False


def parse_env(text: str) -> EnvEntry:
    """``ENV`` or ``ENV:SOURCE`` (e.g. ``Ant-v5:scripted``) from the command line."""
    env_id, _, source = text.partition(":")
    entry = EnvEntry(env_id, source or "expert")
    _check_source(entry, f"--envs {text}")
    return entry


def _check_source(entry: EnvEntry, where: str) -> None:
    if entry.source not in SOURCES:
        raise OptiqError(f"{where}: unknown demo source '{entry.source}'; choose from {', '.join(SOURCES)}")
    if entry.source == "minari" and not entry.dataset:
        raise OptiqError(
            f"{where}: source minari needs a dataset (e.g. {{env: Hopper-v5, source: minari, dataset: …}})"
        )


def _env_entry(item: Any, where: str) -> EnvEntry:
    if isinstance(item, str):
        return parse_env(item)
    if not isinstance(item, dict) or "env" not in item:
        raise OptiqError(
            f"{where}: each env is a name or a mapping with 'env' (e.g. {{env: Ant-v5, source: scripted}})"
        )
    unknown = sorted(set(item) - set(ENV_KEYS))
    if unknown:
        raise OptiqError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(ENV_KEYS)}")
    names = item.get("names")
    entry = EnvEntry(
        env_id=str(item["env"]),
        source=str(item.get("source", "expert")),
        controller=item.get("controller"),
        dataset=item.get("dataset"),
        names=[str(n) for n in names] if names is not None else None,
        expert=Path(item["expert"]) if item.get("expert") else None,
    )
    _check_source(entry, where)
    return entry


def _seeds(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and s >= 0 for s in value):
        raise OptiqError(f"{where}: seeds must be a non-empty list of integers >= 0, got {value!r}")
    if len(set(value)) < len(value):
        raise OptiqError(f"{where}: seeds lists a seed twice ({value}); give each seed once")
    return list(value)


def load_spec(path: Path) -> SweepSpec:
    """Read and check a study YAML; every problem is a one-line error naming the key and the fix."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise OptiqError(f"cannot read study spec {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise OptiqError(f"study spec {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    where = f"study spec {path}"
    if not isinstance(raw, dict):
        raise OptiqError(f"{where}: expected a mapping with at least 'envs'")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise OptiqError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(SPEC_KEYS)}")
    envs = raw.get("envs")
    if not isinstance(envs, list) or not envs:
        raise OptiqError(f"{where}: 'envs' must be a non-empty list (e.g. envs: [Hopper-v5])")
    spec = SweepSpec(envs=[_env_entry(item, f"{where}, envs[{i}]") for i, item in enumerate(envs)])
    if "methods" in raw:
        methods = raw["methods"]
        spec.methods = parse_methods(",".join(methods) if isinstance(methods, list) else str(methods))
    if "seeds" in raw:
        spec.seeds = _seeds(raw["seeds"], where)
    if "preset" in raw:
        if raw["preset"] not in PRESETS:
            raise OptiqError(f"{where}: preset '{raw['preset']}' unknown; choose from {', '.join(PRESETS)}")
        spec.preset = raw["preset"]
    if raw.get("algo") is not None:
        if raw["algo"] not in ("ppo", "sac"):
            raise OptiqError(f"{where}: algo must be ppo or sac, got {raw['algo']!r}")
        spec.algo = raw["algo"]
    if "set" in raw:
        if not isinstance(raw["set"], list) or not all(isinstance(s, str) and "=" in s for s in raw["set"]):
            raise OptiqError(f"{where}: 'set' must be a list of KEY=VALUE strings")
        spec.overrides = list(raw["set"])
    for key in ("run_name", "device"):
        if key in raw:
            setattr(spec, key, str(raw[key]))
    if "hparams" in raw:
        spec.hparams = Path(raw["hparams"])
    if "video" in raw:
        spec.video = bool(raw["video"])
    check_spec(spec)
    return spec


def check_spec(spec: SweepSpec) -> None:
    """Each env once; a duplicate would run the same folders twice at the same time."""
    ids = [entry.env_id for entry in spec.envs]
    if len(set(ids)) < len(ids):
        raise OptiqError(f"the study lists an env twice ({', '.join(ids)}); give each env once")
