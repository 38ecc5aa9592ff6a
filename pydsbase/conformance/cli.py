"""``python -m pydsbase conformance run|compare``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydsbase.conformance.runner import BACKENDS, run_cases

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("conformance", help="replay validation cases and compare with golden outputs")
    sub = parser.add_subparsers(dest="conformance_command", required=True)

    run = sub.add_parser("run", help="run cases, writing OUT/<case_id>.json")
    run.add_argument("cases", nargs="+", type=Path, metavar="CASE.json")
    run.add_argument("--data-root", type=Path, required=True, help="the directory that contains shared/")
    run.add_argument("--out-dir", type=Path, required=True)
    run.add_argument("--backend", default="local", choices=list(BACKENDS),
                     help="local (default; worker processes), http (server processes), docker (containers); "
                          "armadillo, armadillo-docker: the same servers through Armadillo's API")
    run.set_defaults(handler=_run)

    compare = sub.add_parser("compare", help="compare one output with its golden case")
    compare.add_argument("golden", type=Path, metavar="GOLDEN.json")
    compare.add_argument("output", type=Path, metavar="OUT.json")
    compare.set_defaults(handler=_compare)


def _run(args: argparse.Namespace) -> int:
    for path in run_cases(args.cases, args.data_root, args.out_dir, args.backend):
        print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pydsbase.conformance.compare import compare_files

    comparison = compare_files(args.golden, args.output)
    for note in comparison.notes:
        print(f"note: {note}")
    for failure in comparison.failures:
        print(f"FAIL: {failure}")
    print("PASS" if comparison.ok else "FAIL", args.output.stem)
    sys.stdout.flush()
    return 0 if comparison.ok else 1
