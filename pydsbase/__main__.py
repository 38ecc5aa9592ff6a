"""The ``pydsbase`` command line: ``python -m pydsbase <command> ...``.

Each command's module has a function that adds its subcommand to an argparse subparsers object;
``COMMANDS`` lists those functions (add a command by adding its function here).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydsbase import cli, demo, studies
from pydsbase.conformance import cli as conformance_cli

COMMANDS: tuple[Callable[[Any], None], ...] = (
    cli.register_cli,
    conformance_cli.register,
    demo.register,
    studies.register_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pydsbase", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
