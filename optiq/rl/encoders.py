"""Deprecated alias of :mod:`optiq.rl.pretrained.architectures` (moved there; this name goes in the next release).

Kept so that code importing the old path, and models saved before the move (SB3 pickles their
features-extractor class by module path), still load.
"""

from typing import Any

from optiq.rl.pretrained import architectures as _moved
from optiq.rl.pretrained.architectures import *  # noqa: F403


def __getattr__(name: str) -> Any:  # private names too: whatever a pickle names
    return getattr(_moved, name)
