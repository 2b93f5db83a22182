"""The methods stage 06 compares: names, titles, colours and the ``--init`` of their stage-04 runs."""

from __future__ import annotations

from optiq.errors import OptiqError

METHOD_TITLES = {
    "bc_only": "BC only",
    "bc_rl": "BC -> RL",
    "scratch": "RL from scratch",
    "bc_naive": "BC -> RL (naive)",
    "airl": "AIRL",
    "gail": "GAIL",
    "dagger": "DAgger",
}


COLOURS = {
    "bc_rl": "tab:blue",
    "scratch": "tab:orange",
    "bc_naive": "tab:purple",
    "airl": "tab:red",
    "gail": "tab:brown",
    "dagger": "tab:cyan",
}


# ``--methods`` of 06_compare and run_all: "bc" is the BC-only row, the others are the
# stage-04 runs of this ``--init``.
METHOD_INITS = {
    "bc_rl": "bc",
    "scratch": "scratch",
    "bc_naive": "bc_naive",
    "airl": "airl",
    "gail": "gail",
    "dagger": "dagger",
}


METHODS = ("bc", *METHOD_INITS)


DEFAULT_METHODS = ("bc", "bc_rl", "scratch")


EXTRA_METHODS = ("bc_naive", "airl", "gail", "dagger")


# Methods that spend a smaller budget by design: past their last evaluation they keep their final policy.
SHORT_BUDGET_METHODS = ("dagger",)


def parse_methods(text: str) -> tuple[str, ...]:
    """``--methods bc,bc_rl,airl`` as a tuple; an unknown name is a one-line error listing the choices."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise OptiqError(
            f"unknown method '{unknown[0] if unknown else text}' in --methods; choose from: {', '.join(METHODS)}"
        )
    return names
