"""The ``optiq`` command: one entry point for every stage.

``optiq run-all ...`` is ``python run_all.py ...``; ``optiq finetune ...`` is
``python scripts/04_finetune_rl.py ...``, and so on. Flags are the scripts' own. Each command
is a module of :mod:`optiq.commands`, so this works from an installed wheel, without a checkout.
"""

from __future__ import annotations

import sys

from optiq.commands import COMMANDS, command_main


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["train", "rl"]:
        argv = ["train rl", *argv[2:]]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: optiq COMMAND [flags]   (optiq COMMAND --help for its flags)\n\ncommands:")
        for name, (_, script) in COMMANDS.items():
            print(f"  {name:<14} {script}")
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    from optiq.cli import run_main  # after the usage above, which needs none of the library

    command, args = argv[0], argv[1:]
    run = command_main(command)
    # argparse's program name (its usage line, "see optiq COMMAND --help") and run.json's "command"
    sys.argv = [f"optiq {command}", *args]
    run_main(lambda: run(args))


if __name__ == "__main__":
    main()
