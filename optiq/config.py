"""Load and validate ``hparams.yml``: per-environment settings with presets.

The file is keyed by Gymnasium env id (as in rl-baselines3-zoo's hyperparams files).
Every env has the same sections (see :data:`SCHEMA`); a preset (``quick``/``full``)
is a mapping of dotted keys that override the env's base values. The optional ``obs``
section picks state or pixel observations (defaults: :data:`OBS_DEFAULTS`); in pixel mode
:data:`PIXEL_DEFAULTS` and then the env's optional ``pixels`` mapping of dotted keys apply
after the preset, so state-mode settings stay untouched. Any problem is an
:class:`~optiq.errors.OptiqError` with a one-line message naming the file and key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from optiq.errors import OptiqError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HPARAMS = REPO_ROOT / "hparams.yml"
DEFAULT_ENV = "Hopper-v5"
PRESETS = ("quick", "full")
ALGOS = ("ppo", "sac")
OBS_MODES = ("state", "pixels")

# What ``obs`` holds when an env's section leaves it (or some of its keys) out.
OBS_DEFAULTS: dict[str, Any] = {"mode": "state", "width": 64, "height": 64, "frame_stack": 4, "grayscale": True}
# Pixel-mode settings every env gets before its own ``pixels`` overrides: no VecNormalize
# (CnnPolicy scales images by 1/255), a replay buffer of images that fits in memory, and
# separate actor/critic CNNs for PPO, so HybridPPO's critic warm-up leaves the BC actor intact.
PIXEL_DEFAULTS: dict[str, Any] = {
    "finetune.ppo.normalize": False,
    "finetune.sac.normalize": False,
    "finetune.ppo.policy_kwargs.share_features_extractor": False,
    "finetune.sac.hyperparams.buffer_size": 50_000,
}
MIN_IMAGE_SIDE = 36  # the smallest frame SB3's NatureCNN (CnnPolicy) accepts

_ALGO_SCHEMA: dict[str, Any] = {
    "n_envs": int,
    "normalize": bool,
    "hyperparams": dict,
    "policy_kwargs": dict,
    "bc_rl": dict,
}

# Required keys and their types. A nested dict is a section.
SCHEMA: dict[str, Any] = {
    "expert": {"algo": str, "n_timesteps": int},
    "demos": {"n_episodes": int},
    "bc": {
        "n_epochs": int,
        "batch_size": int,
        "learning_rate": float,
        "ent_weight": float,
        "l2_weight": float,
        "val_fraction": float,
        "checkpoint_every": int,
        "select_by": str,
        "select_episodes": int,
    },
    "finetune": {
        "total_timesteps": int,
        "checkpoint_freq": int,
        "ppo": _ALGO_SCHEMA,
        "sac": _ALGO_SCHEMA,
    },
    "eval": {
        "eval_freq": int,
        "n_eval_episodes": int,
        "final_episodes": int,
        "video_length": int,
    },
    "run": {"algo": str, "seeds": list},
    "obs": {"mode": str, "width": int, "height": int, "frame_stack": int, "grayscale": bool},
    "presets": {"quick": dict, "full": dict},
}

# Sections an env may leave out; when present they are validated like SCHEMA.
OPTIONAL_SCHEMA: dict[str, Any] = {
    # --source scripted: a controller factory (module:function) and its keyword parameters
    "scripted": {"controller": str, "params": dict},
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "expert.algo": ALGOS,
    "run.algo": ALGOS,
    "bc.select_by": ("val_loss", "eval_return"),
    "obs.mode": OBS_MODES,
}


def load_hparams_file(path: str | Path = DEFAULT_HPARAMS) -> dict[str, Any]:
    """Read the YAML file; a missing or malformed file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise OptiqError(f"hparams file not found: {path} (pass --hparams PATH or restore hparams.yml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise OptiqError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)} (fix the syntax)") from None
    if not isinstance(data, dict) or not data:
        raise OptiqError(f"{path}: expected a mapping of env ids to settings (e.g. 'Hopper-v5:')")
    return data


def available_envs(path: str | Path = DEFAULT_HPARAMS) -> list[str]:
    return sorted(load_hparams_file(path))


def load_env_config(
    env_id: str,
    preset: str = "quick",
    path: str | Path = DEFAULT_HPARAMS,
    overrides: dict[str, Any] | None = None,
    obs_mode: str | None = None,
) -> dict[str, Any]:
    """Return the validated settings of ``env_id`` with ``preset`` and ``overrides`` applied.

    ``overrides`` uses dotted keys (``{"finetune.total_timesteps": 5000}``), like presets.
    ``obs_mode`` (``--obs``) overrides ``obs.mode``. A pixel-mode config keeps its state-mode
    twin under ``"state_config"`` (see :func:`state_config`): experts act on the true state.
    """
    overrides = dict(overrides or {})
    mode = overrides.pop("obs.mode", None) or obs_mode  # --set obs.mode=... wins over --obs
    config = _load(env_id, preset, Path(path), overrides, mode)
    if config["obs"]["mode"] != "state":
        config["state_config"] = _load(env_id, preset, Path(path), overrides, "state")
    return config


def state_config(config: dict[str, Any]) -> dict[str, Any]:
    """The state-observation settings of ``config`` (itself in state mode): what experts train and act with."""
    return config.get("state_config", config)


def _load(env_id: str, preset: str, path: Path, overrides: dict[str, Any], mode: str | None) -> dict[str, Any]:
    """One env's settings in observation ``mode`` (None: as the file says)."""
    data = load_hparams_file(path)
    if env_id not in data:
        raise OptiqError(
            f"{path}: unknown env '{env_id}'; envs with settings: {', '.join(sorted(data))} "
            "(add a section for it, see README 'Adding an environment')"
        )
    if preset not in PRESETS:
        raise OptiqError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    base = data[env_id]
    if not isinstance(base, dict):
        raise OptiqError(f"{path}: '{env_id}' must be a mapping of sections, got {type(base).__name__}")
    config = copy.deepcopy(base)
    obs = config.get("obs") or {}
    if not isinstance(obs, dict):
        raise OptiqError(f"{path}: '{env_id}.obs' must be a mapping, got {type(obs).__name__}")
    config["obs"] = {**OBS_DEFAULTS, **obs}
    pixels = config.pop("pixels", None) or {}
    if not isinstance(pixels, dict):
        raise OptiqError(f"{path}: '{env_id}.pixels' must be a mapping of dotted keys, got {type(pixels).__name__}")
    config["imitation"] = _imitation_section(config.get("imitation"), path, env_id)
    _validate(config, SCHEMA, path, env_id)
    preset_overrides = config.pop("presets")[preset] or {}
    for key, value in preset_overrides.items():
        _set_dotted(config, key, value, path, f"{env_id}.presets.{preset}")
    config["obs"]["mode"] = mode = mode or config["obs"]["mode"]
    if mode == "pixels":
        for key, value in PIXEL_DEFAULTS.items():
            _set_dotted(config, key, value, path, "pixel defaults")
        for key, value in pixels.items():
            _set_dotted(config, key, value, path, f"{env_id}.pixels")
    for key, value in overrides.items():
        _set_dotted(config, key, value, path, "overrides")
    _validate(config, {k: v for k, v in SCHEMA.items() if k != "presets"}, path, env_id)
    _validate(config, {k: v for k, v in OPTIONAL_SCHEMA.items() if k in config}, path, env_id)
    _check_obs(config, path, env_id)
    config["env_id"] = env_id
    config["preset"] = preset
    return config


def _imitation_section(section: Any, path: Path, env_id: str) -> dict[str, Any]:
    """The optional ``imitation`` section (AIRL/GAIL/DAgger settings), with both subsections present
    so ``--set imitation.dagger.rounds=5`` works for every env; optiq.rl.imitation_methods checks the keys."""
    section = section or {}
    if not isinstance(section, dict):
        raise OptiqError(f"{path}: '{env_id}.imitation' must be a mapping, got {type(section).__name__}")
    return {**section, "adversarial": section.get("adversarial") or {}, "dagger": section.get("dagger") or {}}


def _check_obs(config: dict[str, Any], path: Path, env_id: str) -> None:
    """Pixel settings that the env wrappers and CnnPolicy can actually use."""
    obs = config["obs"]
    if obs["mode"] != "pixels":
        return
    for key in ("width", "height"):
        if obs[key] < MIN_IMAGE_SIDE:
            raise OptiqError(
                f"{path}: '{env_id}.obs.{key}' is {obs[key]}; CnnPolicy needs at least {MIN_IMAGE_SIDE} pixels"
            )
    if obs["frame_stack"] < 1:
        raise OptiqError(f"{path}: '{env_id}.obs.frame_stack' must be at least 1, got {obs['frame_stack']}")
    for algo in ALGOS:
        if config["finetune"][algo]["normalize"]:
            raise OptiqError(
                f"{path}: 'finetune.{algo}.normalize' must be false with obs.mode pixels "
                "(CnnPolicy scales images by 1/255 itself)"
            )


def _validate(section: dict[str, Any], schema: dict[str, Any], path: Path, prefix: str) -> None:
    for key, expected in schema.items():
        dotted = f"{prefix}.{key}"
        if key not in section:
            raise OptiqError(f"{path}: missing key '{dotted}' (add it; see the Hopper-v5 section for an example)")
        value = section[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise OptiqError(f"{path}: '{dotted}' must be a mapping, got {type(value).__name__}")
            _validate(value, expected, path, dotted)
            continue
        section[key] = _coerce(value, expected, path, dotted)
        choice_key = dotted.split(".", 1)[1] if "." in dotted else dotted
        choices = _CHOICES.get(choice_key)
        if choices and section[key] not in choices:
            raise OptiqError(f"{path}: '{dotted}' is '{section[key]}'; choose one of: {', '.join(choices)}")


def _coerce(value: Any, expected: type, path: Path, dotted: str) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif isinstance(value, (float, str)):
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif expected is dict:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
    elif isinstance(value, expected):
        return value
    raise OptiqError(f"{path}: '{dotted}' must be {expected.__name__}, got {value!r}")


def _set_dotted(config: dict[str, Any], dotted: str, value: Any, path: Path, origin: str) -> None:
    parts = dotted.split(".")
    node = config
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise OptiqError(f"{path}: {origin} overrides unknown key '{dotted}' (check the spelling)")
        node = node[part]
    leaf = parts[-1]
    # Free-form sections (hyperparams, policy_kwargs) may gain new keys; others may not.
    free_form = (["hyperparams"], ["policy_kwargs"], ["bc_rl"], ["expert"], ["params"], ["adversarial"], ["dagger"])
    if leaf not in node and parts[-2:-1] not in free_form:
        raise OptiqError(f"{path}: {origin} overrides unknown key '{dotted}' (check the spelling)")
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is read as YAML."""
    if "=" not in text:
        raise OptiqError(f"bad --set '{text}': expected KEY=VALUE, e.g. finetune.total_timesteps=20000")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        return key.strip(), raw
