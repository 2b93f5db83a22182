"""User-facing errors.

An :class:`OptiqError` carries a one-line message that names the problem and the fix.
Scripts catch it, print the line and exit with status 2 (see :mod:`optiq.cli`).
"""

from __future__ import annotations


class OptiqError(Exception):
    """A problem with the user's input (config, files, flags), not a bug."""

    exit_code = 2
