#!/usr/bin/env python
"""Sweep envs x methods x seeds (`optiq sweep`).

The code, its flags and its --help text are in optiq/commands/sweep.py.
"""

from optiq.cli import run_main
from optiq.commands.sweep import main

if __name__ == "__main__":
    run_main(main)
