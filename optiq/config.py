"""Load and validate ``hparams.yml``: per-environment settings with presets.

The file is keyed by Gymnasium env id (as in rl-baselines3-zoo's hyperparams files).
Every env has the same sections (see :data:`SCHEMA`); a preset (``quick``/``full``)
is a mapping of dotted keys that override the env's base values. The optional ``obs``
section picks state or pixel observations (defaults: :data:`OBS_DEFAULTS`); in pixel mode
:data:`PIXEL_DEFAULTS` and then the env's optional ``pixels`` mapping of dotted keys apply
after the preset, so state-mode settings stay untouched. After presets and ``--set`` overrides
are merged, every setting is checked against its type and range (:data:`SETTING_RULES`), and
the free-form ``hyperparams`` / ``bc_rl`` sections against the keys SB3 and optiq accept. Any
problem is an :class:`~optiq.errors.OptiqError` with a one-line message naming the key, the bad
value, what it must be, and where it came from (the file, a preset, or ``--set``).
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from optiq.errors import OptiqError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# A source checkout (run from it, or installed editable) has pyproject.toml beside the package; an
# installed wheel has not, and reads the copies of hparams.yml and experts/ it carries in the package.
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
DATA_ROOT = REPO_ROOT if IN_CHECKOUT else PACKAGE_DIR
DEFAULT_HPARAMS = DATA_ROOT / "hparams.yml"
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


MAX_SEED = 2**31 - 1  # numpy seeds must stay below 2**32, and stages add offsets (seed + 1000, ...)


class _Invalid(ValueError):
    """A value outside its :class:`Rule`."""


@dataclass(frozen=True)
class Rule:
    """What a setting may hold, and the same in words (``expect``) for one-line errors."""

    expect: str
    check: Callable[[Any], Any]  # the value (numbers parsed from strings), or raises _Invalid

    def apply(self, value: Any) -> Any:
        return self.check(value)


def _as_number(value: Any, integer: bool) -> int | float | None:
    """``value`` as a finite int (``integer``) or float, accepting numeric strings such as '1e-4'; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    if integer:
        return int(value) if value.is_integer() else None
    return value


def _number(
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    low_open: bool = False,
    high_open: bool = False,
    null: bool = False,
    also: tuple[Any, ...] = (),
) -> Rule:
    """A number (an integer with ``integer``) in a range; ``null`` also allows null, ``also`` other values."""
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        expect = f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        expect = f"{kind} {'>' if low_open else '>='} {low}"
    elif high is not None:
        expect = f"{kind} {'<' if high_open else '<='} {high}"
    else:
        expect = kind
    extras = [repr(extra) for extra in also] + (["null"] if null else [])
    if extras:
        expect += " or " + " or ".join(extras)

    def check(value: Any) -> Any:
        if value is None and null:
            return None
        if not isinstance(value, bool) and value in also:
            return value
        number = _as_number(value, integer)
        if number is None:
            raise _Invalid(value)
        if low is not None and (number < low or (low_open and number == low)):
            raise _Invalid(value)
        if high is not None and (number > high or (high_open and number == high)):
            raise _Invalid(value)
        return number

    return Rule(expect, check)


def _boolean() -> Rule:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(value)
        return value

    return Rule("true or false", check)


def _choice(*choices: str) -> Rule:
    def check(value: Any) -> str:
        if value not in choices:
            raise _Invalid(value)
        return value

    return Rule(f"one of: {', '.join(choices)}", check)


def _ent_coef() -> Rule:
    """SAC's entropy coefficient: a number >= 0, 'auto', or 'auto_<initial value > 0>'."""
    fixed = _number(0)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("auto"):
            start = _as_number(value[5:], integer=False) if value.startswith("auto_") else None
            if value == "auto" or (start is not None and start > 0):
                return value
            raise _Invalid(value)
        return fixed.check(value)

    return Rule(f"{fixed.expect}, 'auto' or 'auto_<initial value > 0>'", check)


def _target_entropy() -> Rule:
    number = _number()

    def check(value: Any) -> Any:
        return value if value == "auto" else number.check(value)

    return Rule("a number or 'auto'", check)


def _train_freq() -> Rule:
    """SAC's train_freq: an integer >= 1, or [n >= 1, 'step' | 'episode']."""
    count = _number(1, integer=True)

    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or value[1] not in ("step", "episode"):
                raise _Invalid(value)
            return [count.check(value[0]), value[1]]
        return count.check(value)

    return Rule(f"{count.expect} or [n, 'step' | 'episode']", check)


def _seed_list() -> Rule:
    seed = _number(0, MAX_SEED, integer=True)

    def check(value: Any) -> list[int]:
        if not isinstance(value, list) or not value:
            raise _Invalid(value)
        seeds = [seed.check(item) for item in value]
        if len(set(seeds)) != len(seeds):
            raise _Invalid(value)
        return seeds

    return Rule(f"a non-empty list of distinct integers in [0, {MAX_SEED}]", check)


_POSITIVE = _number(0, low_open=True)
_NON_NEGATIVE = _number(0)
_FRACTION = _number(0, 1)  # [0, 1]
_COUNT = _number(1, integer=True)  # >= 1
_STEPS = _number(0, integer=True)  # >= 0
_DISCOUNT = _number(0, 1, low_open=True)  # (0, 1]

# The type and range of every numeric (and boolean) setting, keyed by dotted path; ``*`` stands
# for either algorithm. Settings under finetune.<algo>.hyperparams and expert.hyperparams must
# also be arguments of SB3's PPO/SAC; those under finetune.<algo>.bc_rl are exactly the keys
# listed here (HybridPPO's HybridSettings + target_kl, DemoSAC's arguments: optiq/rl/finetune.py;
# tests/test_input_validation.py checks that both lists agree).
SETTING_RULES: dict[str, Rule] = {
    "expert.n_timesteps": _COUNT,
    "demos.n_episodes": _COUNT,
    "bc.n_epochs": _COUNT,
    "bc.batch_size": _COUNT,
    "bc.learning_rate": _POSITIVE,
    "bc.ent_weight": _NON_NEGATIVE,
    "bc.l2_weight": _NON_NEGATIVE,
    "bc.val_fraction": _number(0, 1, high_open=True),
    "bc.checkpoint_every": _COUNT,
    "bc.select_episodes": _COUNT,
    "finetune.total_timesteps": _COUNT,
    "finetune.checkpoint_freq": _STEPS,  # 0: only at the end
    "finetune.*.n_envs": _COUNT,
    "finetune.*.normalize": _boolean(),
    # SB3 hyperparameters (both algorithms)
    "finetune.*.hyperparams.learning_rate": _POSITIVE,
    "finetune.*.hyperparams.gamma": _DISCOUNT,
    "finetune.*.hyperparams.use_sde": _boolean(),
    "finetune.*.hyperparams.sde_sample_freq": _number(-1, integer=True),
    "finetune.*.hyperparams.stats_window_size": _COUNT,
    # PPO
    "finetune.ppo.hyperparams.n_steps": _COUNT,
    "finetune.ppo.hyperparams.batch_size": _number(2, integer=True),  # SB3 asserts > 1 (advantage normalisation)
    "finetune.ppo.hyperparams.n_epochs": _COUNT,
    "finetune.ppo.hyperparams.gae_lambda": _FRACTION,
    "finetune.ppo.hyperparams.clip_range": _POSITIVE,
    "finetune.ppo.hyperparams.clip_range_vf": _number(0, low_open=True, null=True),
    "finetune.ppo.hyperparams.normalize_advantage": _boolean(),
    "finetune.ppo.hyperparams.ent_coef": _NON_NEGATIVE,
    "finetune.ppo.hyperparams.vf_coef": _NON_NEGATIVE,
    "finetune.ppo.hyperparams.max_grad_norm": _POSITIVE,
    "finetune.ppo.hyperparams.target_kl": _number(0, low_open=True, null=True),
    # SAC
    "finetune.sac.hyperparams.buffer_size": _COUNT,
    "finetune.sac.hyperparams.learning_starts": _STEPS,
    "finetune.sac.hyperparams.batch_size": _COUNT,
    "finetune.sac.hyperparams.tau": _DISCOUNT,
    "finetune.sac.hyperparams.train_freq": _train_freq(),
    "finetune.sac.hyperparams.gradient_steps": _number(1, integer=True, also=(-1,)),  # -1: one per env step
    "finetune.sac.hyperparams.optimize_memory_usage": _boolean(),
    "finetune.sac.hyperparams.n_steps": _COUNT,
    "finetune.sac.hyperparams.ent_coef": _ent_coef(),
    "finetune.sac.hyperparams.target_update_interval": _COUNT,
    "finetune.sac.hyperparams.target_entropy": _target_entropy(),
    "finetune.sac.hyperparams.use_sde_at_warmup": _boolean(),
    # --init bc with PPO (HybridPPO)
    "finetune.ppo.bc_rl.critic_warmup_steps": _STEPS,
    "finetune.ppo.bc_rl.actor_lr_warmup_steps": _STEPS,
    "finetune.ppo.bc_rl.actor_lr_scale": _NON_NEGATIVE,
    "finetune.ppo.bc_rl.bc_coeff": _NON_NEGATIVE,
    "finetune.ppo.bc_rl.bc_decay": _DISCOUNT,
    "finetune.ppo.bc_rl.bc_batch_size": _COUNT,
    "finetune.ppo.bc_rl.bc_loss": _choice("nll", "mse"),
    "finetune.ppo.bc_rl.bc_filter": _boolean(),
    "finetune.ppo.bc_rl.mix_ratio": _number(0, 1, high_open=True),
    "finetune.ppo.bc_rl.rho_bar": _POSITIVE,
    "finetune.ppo.bc_rl.c_bar": _POSITIVE,
    "finetune.ppo.bc_rl.log_std_subtract": _number(),
    "finetune.ppo.bc_rl.log_std_floor": _number(null=True),
    "finetune.ppo.bc_rl.target_kl": _number(0, low_open=True, null=True),
    "finetune.ppo.bc_rl.bc_reference_episodes": _STEPS,
    "finetune.ppo.bc_rl.bc_adapt_rate": _NON_NEGATIVE,
    "finetune.ppo.bc_rl.policy_average_steps": _STEPS,
    "finetune.ppo.bc_rl.release_check_steps": _STEPS,  # 0: off
    "finetune.ppo.bc_rl.release_check_episodes": _COUNT,
    "finetune.ppo.bc_rl.release_reference_episodes": _COUNT,
    "finetune.ppo.bc_rl.release_min_fraction": _NON_NEGATIVE,
    # --init bc with SAC (DemoSAC)
    "finetune.sac.bc_rl.critic_warmup_steps": _STEPS,
    "finetune.sac.bc_rl.demo_fraction": _FRACTION,
    "finetune.sac.bc_rl.bc_coeff": _NON_NEGATIVE,
    "finetune.sac.bc_rl.bc_filter": _boolean(),
    "finetune.sac.bc_rl.bc_batch_size": _COUNT,
    "finetune.sac.bc_rl.bc_decay": _DISCOUNT,
    "finetune.sac.bc_rl.critic_layer_norm": _boolean(),
    "finetune.sac.bc_rl.warmup_action_noise": _NON_NEGATIVE,
    "finetune.sac.bc_rl.actor_lr_warmup_steps": _STEPS,
    "finetune.sac.bc_rl.bc_proposals": _boolean(),
    "finetune.sac.bc_rl.bc_reference_episodes": _STEPS,
    "finetune.sac.bc_rl.bc_adapt_rate": _NON_NEGATIVE,
    "finetune.sac.bc_rl.policy_average_steps": _STEPS,
    "finetune.sac.bc_rl.release_check_steps": _STEPS,  # 0: off
    "finetune.sac.bc_rl.release_check_episodes": _COUNT,
    "finetune.sac.bc_rl.release_reference_episodes": _COUNT,
    "finetune.sac.bc_rl.release_min_fraction": _NON_NEGATIVE,
    "finetune.sac.bc_rl.target_entropy": _target_entropy(),
    "finetune.sac.bc_rl.learning_starts": _STEPS,
    "finetune.sac.bc_rl.ent_coef": _ent_coef(),
    "eval.eval_freq": _STEPS,  # 0: evaluate only at the start and the end
    "eval.n_eval_episodes": _COUNT,
    "eval.final_episodes": _COUNT,
    "eval.video_length": _COUNT,
    "run.seeds": _seed_list(),
    "obs.width": _COUNT,
    "obs.height": _COUNT,
    "obs.frame_stack": _COUNT,
    "obs.grayscale": _boolean(),
}

# SB3 constructor arguments that optiq passes itself (optiq/algos.py:build_model), never from hyperparams.
_RESERVED_SB3_ARGS = {"self", "policy", "env", "seed", "verbose", "device", "tensorboard_log", "policy_kwargs"}
EXPERT_KEYS = ("algo", "n_timesteps", "hyperparams", "policy_kwargs")


def setting_rule(dotted: str) -> Rule | None:
    """The :data:`SETTING_RULES` entry of ``dotted`` (exact, else with ``*`` for the algorithm)."""
    if dotted in SETTING_RULES:
        return SETTING_RULES[dotted]
    parts = dotted.split(".")
    if len(parts) > 2 and parts[0] == "finetune":
        return SETTING_RULES.get(".".join(["finetune", "*", *parts[2:]]))
    return None


def bc_rl_keys(algo: str) -> list[str]:
    """The keys ``finetune.<algo>.bc_rl`` may hold."""
    prefix = f"finetune.{algo}.bc_rl."
    return sorted(key[len(prefix) :] for key in SETTING_RULES if key.startswith(prefix))


@functools.cache
def sb3_hyperparams(algo: str) -> list[str]:
    """The keys ``finetune.<algo>.hyperparams`` may hold: SB3's constructor arguments."""
    import inspect

    from stable_baselines3 import PPO, SAC

    cls = {"ppo": PPO, "sac": SAC}[algo]
    return sorted(
        name
        for name, param in inspect.signature(cls.__init__).parameters.items()
        if name not in _RESERVED_SB3_ARGS and not name.startswith("_") and param.kind is param.POSITIONAL_OR_KEYWORD
    )


def _show(value: Any) -> str:
    """A value as the user would write it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


class _Sources:
    """Where each setting's value came from (the file, a preset, --set), so errors name what to fix."""

    def __init__(self, path: Path, env_id: str):
        self.path = path
        self.env_id = env_id
        self.applied: list[tuple[str, str]] = []  # (dotted key, origin) in the order applied

    def record(self, dotted: str, origin: str) -> None:
        self.applied.append((dotted, origin))

    def origin(self, dotted: str) -> str | None:
        """The last override of ``dotted`` (or of a section holding it); None: the env's own section."""
        for key, origin in reversed(self.applied):
            if dotted == key or dotted.startswith(key + "."):
                return origin
        return None

    def error(self, dotted: str, problem: str) -> OptiqError:
        """``'key' <problem>`` as a one-line error naming where the value came from and how to fix it."""
        origin = self.origin(dotted)
        if origin == "--set":
            return OptiqError(f"'{dotted}' {problem} (fix the --set value)")
        where = f"set in {origin}; fix it there" if origin else f"fix it in {self.path.name}"
        return OptiqError(
            f"{self.path}: '{self.env_id}.{dotted}' {problem} ({where} or override it with --set {dotted}=VALUE)"
        )

    def bad_value(self, dotted: str, value: Any, expect: str) -> OptiqError:
        return self.error(dotted, f"must be {expect}, got {_show(value)}")

    def unknown_key(self, dotted: str, origin: str | None, known: list[str], section: str | None = None) -> OptiqError:
        """``dotted`` is not a setting: name it, the closest known ones, and where it was written."""
        close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        else:
            inside = section + "." if section else ""
            names = [key[len(inside) :] for key in known if key.startswith(inside) and "." not in key[len(inside) :]]
            hint = f"; {section or 'the sections'} {'has' if section else 'are'}: {', '.join(names)}" if names else ""
        if origin == "--set":
            return OptiqError(f"unknown key '{dotted}' in --set{hint} (check the spelling)")
        where = f"{origin} sets" if origin else f"'{self.env_id}' has"
        return OptiqError(f"{self.path}: {where} unknown key '{dotted}'{hint} (check the spelling)")


def _dotted_keys(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Every section and setting of ``node`` as a dotted key."""
    keys = []
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


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
    set_mode = overrides.pop("obs.mode", None)  # --set obs.mode=... wins over --obs
    mode = set_mode or obs_mode
    config = _load(env_id, preset, Path(path), overrides, mode, "--set" if set_mode else None)
    if config["obs"]["mode"] != "state":
        config["state_config"] = _load(env_id, preset, Path(path), overrides, "state")
    return config


def state_config(config: dict[str, Any]) -> dict[str, Any]:
    """The state-observation settings of ``config`` (itself in state mode): what experts train and act with."""
    return config.get("state_config", config)


def _load(
    env_id: str, preset: str, path: Path, overrides: dict[str, Any], mode: str | None, mode_origin: str | None = None
) -> dict[str, Any]:
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
    sources = _Sources(path, env_id)
    config = copy.deepcopy(base)
    obs = config.get("obs") or {}
    if not isinstance(obs, dict):
        raise OptiqError(f"{path}: '{env_id}.obs' must be a mapping, got {type(obs).__name__}")
    config["obs"] = {**OBS_DEFAULTS, **obs}
    pixels = config.pop("pixels", None) or {}
    if not isinstance(pixels, dict):
        raise OptiqError(f"{path}: '{env_id}.pixels' must be a mapping of dotted keys, got {type(pixels).__name__}")
    config["imitation"] = _imitation_section(config.get("imitation"), path, env_id)
    _validate(config, SCHEMA, sources)
    preset_overrides = config.pop("presets")[preset] or {}
    for key, value in preset_overrides.items():
        _set_dotted(config, key, value, sources, f"{env_id}.presets.{preset}")
    if mode is not None and mode_origin is not None:
        sources.record("obs.mode", mode_origin)
    config["obs"]["mode"] = mode = mode or config["obs"]["mode"]
    if mode == "pixels":
        for key, value in PIXEL_DEFAULTS.items():
            _set_dotted(config, key, value, sources, "optiq's pixel defaults")
        for key, value in pixels.items():
            _set_dotted(config, key, value, sources, f"{env_id}.pixels")
    for key, value in overrides.items():
        _set_dotted(config, key, value, sources, "--set")
    _validate(config, {k: v for k, v in SCHEMA.items() if k != "presets"}, sources)
    _validate(config, {k: v for k, v in OPTIONAL_SCHEMA.items() if k in config}, sources)
    _check_settings(config, sources)
    _check_obs(config, sources)
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


def _check_obs(config: dict[str, Any], sources: _Sources) -> None:
    """Pixel settings that the env wrappers and CnnPolicy can actually use."""
    obs = config["obs"]
    if obs["mode"] != "pixels":
        return
    for key in ("width", "height"):
        if obs[key] < MIN_IMAGE_SIDE:
            raise sources.error(f"obs.{key}", f"is {obs[key]}; CnnPolicy needs at least {MIN_IMAGE_SIDE} pixels")
    for algo in ALGOS:
        if config["finetune"][algo]["normalize"]:
            raise OptiqError(
                f"{sources.path}: 'finetune.{algo}.normalize' must be false with obs.mode pixels "
                "(CnnPolicy scales images by 1/255 itself)"
            )


def _check_settings(config: dict[str, Any], sources: _Sources) -> None:
    """Every setting with a :data:`SETTING_RULES` entry is in range; free-form sections hold known keys only."""
    known = _dotted_keys(config)
    for dotted in known:
        rule = setting_rule(dotted)
        if rule is not None:
            _apply_rule(config, dotted, rule, sources)
    expert = config["expert"]
    for key in expert:
        if key not in EXPERT_KEYS:
            keys = [f"expert.{name}" for name in EXPERT_KEYS]
            raise sources.unknown_key(f"expert.{key}", sources.origin(f"expert.{key}"), keys, "expert")
    for key in ("hyperparams", "policy_kwargs"):
        if expert.get(key) is not None and not isinstance(expert[key], dict):
            raise sources.bad_value(f"expert.{key}", expert[key], "a mapping or null")
    sections = [(f"finetune.{algo}.hyperparams", algo) for algo in ALGOS]
    if expert.get("hyperparams"):
        sections.append(("expert.hyperparams", expert["algo"]))
    for section, algo in sections:
        _check_free_form(config, section, sb3_hyperparams(algo), f"finetune.{algo}.hyperparams", sources)
    for algo in ALGOS:
        bc_rl = f"finetune.{algo}.bc_rl"
        _check_free_form(config, bc_rl, bc_rl_keys(algo), bc_rl, sources)
    ppo = config["finetune"]["ppo"]
    n_steps = ppo["hyperparams"].get("n_steps", 2048)
    if ppo["hyperparams"].get("normalize_advantage", True) and n_steps * ppo["n_envs"] < 2:
        raise sources.error(
            "finetune.ppo.hyperparams.n_steps",
            f"is {n_steps} with finetune.ppo.n_envs {ppo['n_envs']}; PPO needs n_steps * n_envs >= 2",
        )


def _check_free_form(config: dict[str, Any], section: str, keys: list[str], rules: str, sources: _Sources) -> None:
    """``section`` (hyperparams, bc_rl) holds only ``keys``, each within the rule of ``<rules>.<key>``."""
    node = _get_dotted(config, section)
    for key in list(node):
        dotted = f"{section}.{key}"
        if key not in keys:
            raise sources.unknown_key(dotted, sources.origin(dotted), [f"{section}.{k}" for k in keys], section)
        rule = setting_rule(f"{rules}.{key}")
        if rule is not None:
            _apply_rule(config, dotted, rule, sources)


def _get_dotted(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _apply_rule(config: dict[str, Any], dotted: str, rule: Rule, sources: _Sources) -> None:
    """Replace the value at ``dotted`` by its checked form (numbers parsed), or raise a one-line error."""
    *parents, leaf = dotted.split(".")
    node = _get_dotted(config, ".".join(parents)) if parents else config
    try:
        node[leaf] = rule.apply(node[leaf])
    except _Invalid:
        raise sources.bad_value(dotted, node[leaf], rule.expect) from None


def _validate(section: dict[str, Any], schema: dict[str, Any], sources: _Sources, prefix: str = "") -> None:
    for key, expected in schema.items():
        dotted = f"{prefix}{key}"
        if key not in section:
            raise OptiqError(
                f"{sources.path}: missing key '{sources.env_id}.{dotted}' "
                "(add it; see the Hopper-v5 section for an example)"
            )
        value = section[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise sources.bad_value(dotted, value, "a mapping")
            _validate(value, expected, sources, dotted + ".")
            continue
        section[key] = _coerce(value, expected, sources, dotted)
        choices = _CHOICES.get(dotted)
        if choices and section[key] not in choices:
            raise sources.error(dotted, f"is '{section[key]}'; choose one of: {', '.join(choices)}")


def _coerce(value: Any, expected: type, sources: _Sources, dotted: str) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        number = _as_number(value, integer=True)
        if number is not None:
            return number
    elif expected is float:
        number = _as_number(value, integer=False)
        if number is not None and abs(number) < 1e300:
            return float(number)
    elif expected is dict:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
    elif isinstance(value, expected):
        return value
    rule = setting_rule(dotted)
    raise sources.bad_value(dotted, value, rule.expect if rule is not None else expected.__name__)


def _set_dotted(config: dict[str, Any], dotted: str, value: Any, sources: _Sources, origin: str) -> None:
    parts = dotted.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            section = ".".join(parts[:depth]) or None
            raise sources.unknown_key(dotted, origin, _dotted_keys(config), section)
        node = node[part]
    leaf = parts[-1]
    # Free-form sections (hyperparams, policy_kwargs, ...) may gain new keys; others may not.
    # _check_settings then checks the keys of hyperparams and bc_rl (SB3's / optiq's arguments).
    free_form = (["hyperparams"], ["policy_kwargs"], ["bc_rl"], ["expert"], ["params"], ["adversarial"], ["dagger"])
    if leaf not in node and parts[-2:-1] not in free_form:
        raise sources.unknown_key(dotted, origin, _dotted_keys(config), ".".join(parts[:-1]) or None)
    node[leaf] = value
    sources.record(dotted, origin)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is read as YAML."""
    if "=" not in text:
        raise OptiqError(f"bad --set '{text}': expected KEY=VALUE, e.g. finetune.total_timesteps=20000")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise OptiqError(f"bad --set '{text}': expected KEY=VALUE, e.g. finetune.total_timesteps=20000")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        return key.strip(), raw
