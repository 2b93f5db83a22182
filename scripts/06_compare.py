#!/usr/bin/env python
"""Stage 06: compare BC only vs BC -> RL vs RL from scratch (`optiq compare`).

The code, its flags and its --help text are in optiq/commands/compare.py.
"""

from optiq.cli import run_main
from optiq.commands.compare import main

if __name__ == "__main__":
    run_main(main)
