"""`jupyter modelserve`: the server (app.py), or one of its subcommands (cli.py).

A subcommand needs neither Jupyter Server nor its imports (about 2 s of a start), so it is
dispatched here before the server application is imported.
"""

from __future__ import annotations

import sys

from .cli import SUBCOMMANDS


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    subcommand = SUBCOMMANDS.get(args[0]) if args else None
    if subcommand is not None:
        subcommand.launch_instance(args[1:])
        return
    from .app import ModelServeApp

    ModelServeApp.launch_instance(args)
