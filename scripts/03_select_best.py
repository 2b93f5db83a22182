#!/usr/bin/env python
"""Stage 03: pick the best BC checkpoint of stage 02 (`optiq select-best`).

The code, its flags and its --help text are in optiq/commands/select_best.py.
"""

from optiq.cli import run_main
from optiq.commands.select_best import main

if __name__ == "__main__":
    run_main(main)
