#!/usr/bin/env python
"""Stage 01: collect demonstrations (`optiq collect-demos`).

The code, its flags and its --help text are in optiq/commands/collect_demos.py.
"""

from optiq.cli import run_main
from optiq.commands.collect_demos import main

if __name__ == "__main__":
    run_main(main)
