"""What a setting may hold: :class:`Rule` and the rules optiq's settings use.

A rule checks one value and returns it in its checked form (numbers parsed from strings such as
'1e-4'), or raises :class:`Invalid`; ``expect`` says the same in words, so every error is one line
naming what the value must be. optiq.settings attaches a rule to each field of hparams.yml's
typed sections; optiq.config applies them on load and optiq.cli to the dedicated flags.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_SEED = 2**31 - 1  # numpy seeds must stay below 2**32, and stages add offsets (seed + 1000, ...)


class Invalid(ValueError):
    """A value outside its :class:`Rule`."""


@dataclass(frozen=True)
class Rule:
    """What a setting may hold, and the same in words (``expect``) for one-line errors."""

    expect: str
    check: Callable[[Any], Any]  # the value (numbers parsed from strings), or raises Invalid
    choices: tuple[str, ...] = ()  # a choice among names: the names

    def apply(self, value: Any) -> Any:
        return self.check(value)


def as_number(value: Any, integer: bool) -> int | float | None:
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


def number(
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
        parsed = as_number(value, integer)
        if parsed is None:
            raise Invalid(value)
        if low is not None and (parsed < low or (low_open and parsed == low)):
            raise Invalid(value)
        if high is not None and (parsed > high or (high_open and parsed == high)):
            raise Invalid(value)
        return parsed

    return Rule(expect, check)


def _instance_of(kind: type, expect: str) -> Rule:
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise Invalid(value)
        return value

    return Rule(expect, check)


def boolean() -> Rule:
    return _instance_of(bool, "true or false")


def choice(*choices: str) -> Rule:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid(value)
        return value

    return Rule(f"one of: {', '.join(choices)}", check, tuple(choices))


def ent_coef() -> Rule:
    """SAC's entropy coefficient: a number >= 0, 'auto', or 'auto_<initial value > 0>'."""
    fixed = number(0)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("auto"):
            start = as_number(value[5:], integer=False) if value.startswith("auto_") else None
            if value == "auto" or (start is not None and start > 0):
                return value
            raise Invalid(value)
        return fixed.check(value)

    return Rule(f"{fixed.expect}, 'auto' or 'auto_<initial value > 0>'", check)


def target_entropy() -> Rule:
    any_number = number()

    def check(value: Any) -> Any:
        return value if value == "auto" else any_number.check(value)

    return Rule("a number or 'auto'", check)


def train_freq() -> Rule:
    """SAC's train_freq: an integer >= 1, or [n >= 1, 'step' | 'episode']."""
    count = number(1, integer=True)

    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or value[1] not in ("step", "episode"):
                raise Invalid(value)
            return [count.check(value[0]), value[1]]
        return count.check(value)

    return Rule(f"{count.expect} or [n, 'step' | 'episode']", check)


def seed_list() -> Rule:
    seed = number(0, MAX_SEED, integer=True)

    def check(value: Any) -> list[int]:
        if not isinstance(value, list) or not value:
            raise Invalid(value)
        seeds = [seed.check(item) for item in value]
        if len(set(seeds)) != len(seeds):
            raise Invalid(value)
        return seeds

    return Rule(f"a non-empty list of distinct integers in [0, {MAX_SEED}]", check)


def text() -> Rule:
    return _instance_of(str, "a string")


def mapping(keep_null: bool = False) -> Rule:
    """A mapping; null reads as an empty one (``keep_null``: stays null)."""

    def check(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None if keep_null else {}
        if not isinstance(value, dict):
            raise Invalid(value)
        return value

    return Rule("a mapping or null" if keep_null else "a mapping", check)


def int_list(low: int = 1) -> Rule:
    """A list of integers >= ``low`` (layer sizes)."""
    item = number(low, integer=True)

    def check(value: Any) -> list[int]:
        if not isinstance(value, (list, tuple)):
            raise Invalid(value)
        return [item.check(entry) for entry in value]

    return Rule(f"a list of integers >= {low}", check)


POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
FRACTION = number(0, 1)  # [0, 1]
COUNT = number(1, integer=True)  # >= 1
STEPS = number(0, integer=True)  # >= 0
DISCOUNT = number(0, 1, low_open=True)  # (0, 1]
