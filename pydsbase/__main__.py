"""The ``pydsbase`` command line: ``python -m pydsbase <command> ...``.

Each command lives in its own module exposing ``register(subparsers)``; modules listed in
``COMMAND_MODULES`` that are not installed yet are skipped, so others can add commands
(e.g. ``studies up``) by adding one module name here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

COMMAND_MODULES = (
    "pydsbase.cli",
    "pydsbase.conformance.cli",
    "pydsbase.demo",
    "pydsbase.studies_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pydsbase", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
