"""Optional dependencies, grouped as pip extras of optiq (see pyproject.toml).

``make install`` installs all of them; a slimmer install gets a clear message naming the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from optiq.errors import OptiqError

EXTRAS = {
    "moviepy": "video",
    "wandb": "tracking",
    "rliable": "stats",
    "minari": "minari",
    "datasets": "dagger",
    "ray": "ray",
}


class MissingExtraError(OptiqError, ImportError):
    """An optional dependency is not installed; the message says which extra provides it.

    An OptiqError, so scripts print it as one line and exit 2.
    """


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module.split(".")[0], "all")
        raise MissingExtraError(
            f"{purpose} needs '{module.split('.')[0]}': pip install 'optiq[{extra}]' (or run make install)"
        ) from None


def missing_extra_message(module: str, purpose: str) -> str | None:
    """None if ``module`` imports, else the same message :func:`require` would raise."""
    try:
        require(module, purpose)
    except MissingExtraError as exc:
        return str(exc)
    return None
