"""The methods stage 06 compares: names, titles, colours and the ``--init`` of their stage-04 runs."""

from __future__ import annotations

import sys

from optiq.errors import OptiqError

METHOD_TITLES = {
    "bc_only": "BC only",
    "bc_rl": "BC -> RL",
    "scratch": "RL from scratch",
    "bc_naive": "BC -> RL (naive)",
    "airl": "AIRL",
    "gail": "GAIL",
    "dagger": "DAgger",
    "ipmd": "IPMD",
}


COLOURS = {
    "bc_rl": "tab:blue",
    "scratch": "tab:orange",
    "bc_naive": "tab:purple",
    "airl": "tab:red",
    "gail": "tab:brown",
    "dagger": "tab:cyan",
    "ipmd": "tab:olive",
}


# ``--methods`` of 06_compare and run_all: "bc_only" is the BC-only row (no stage-04 run), the
# others are the stage-04 runs of this ``--init`` ("bc_rl" is ``--init bc``: BC -> RL).
METHOD_INITS = {
    "bc_rl": "bc",
    "scratch": "scratch",
    "bc_naive": "bc_naive",
    "airl": "airl",
    "gail": "gail",
    "dagger": "dagger",
    "ipmd": "ipmd",
}


BC_ONLY = "bc_only"
METHODS = (BC_ONLY, *METHOD_INITS)
# Old method names, accepted for one release with a warning.
DEPRECATED_METHODS = {"bc": BC_ONLY}


DEFAULT_METHODS = (BC_ONLY, "bc_rl", "scratch")


EXTRA_METHODS = ("bc_naive", "airl", "gail", "dagger", "ipmd")


# Methods that spend a smaller budget by design: past their last evaluation they keep their final policy.
SHORT_BUDGET_METHODS = ("dagger",)


def parse_methods(text: str) -> tuple[str, ...]:
    """``--methods bc_only,bc_rl,airl`` as a tuple; an unknown name is a one-line error listing the choices.

    The old name ``bc`` (BC only, easily read as ``--init bc``, which is BC -> RL) still works for
    one release, with a warning on stderr."""
    given = [name.strip() for name in text.split(",") if name.strip()]
    for old in dict.fromkeys(name for name in given if name in DEPRECATED_METHODS):
        print(
            f"warning: method '{old}' in --methods is deprecated, use '{DEPRECATED_METHODS[old]}' "
            "(it will be removed in the next release)",
            file=sys.stderr,
        )
    names = tuple(dict.fromkeys(DEPRECATED_METHODS.get(name, name) for name in given))
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise OptiqError(
            f"unknown method '{unknown[0] if unknown else text}' in --methods; choose from: {', '.join(METHODS)}"
        )
    return names
