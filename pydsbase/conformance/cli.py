"""``python -m pydsbase conformance run|compare``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydsbase.conformance.runner import BACKENDS, run_cases

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "conformance", help="the conformance kit: golden cases (run, compare), reference cases and suites, scores")
    sub = parser.add_subparsers(dest="conformance_command", required=True)

    run = sub.add_parser("run", help="run cases, writing OUT/<case_id>.json")
    run.add_argument("cases", nargs="+", type=Path, metavar="CASE.json")
    run.add_argument("--data-root", type=Path, required=True, help="the directory that contains shared/")
    run.add_argument("--out-dir", type=Path, required=True)
    run.add_argument("--backend", action="append", choices=list(BACKENDS),
                     help="local (default; worker processes), http (server processes), docker (containers); "
                          "armadillo, armadillo-docker: the same servers through Armadillo's API. Repeat it "
                          "for backends of one engine (http and armadillo; docker and armadillo-docker): "
                          "the studies start once and each case runs through each, into OUT/<backend>/")
    run.set_defaults(handler=_run)

    compare = sub.add_parser("compare", help="compare one output with its golden case")
    compare.add_argument("golden", type=Path, metavar="GOLDEN.json")
    compare.add_argument("output", type=Path, metavar="OUT.json")
    compare.set_defaults(handler=_compare)

    reference = sub.add_parser("reference", help="reference answers for any data: a case folder")
    reference.add_argument("--study", action="append", required=True, metavar="NAME=CSV", type=_study,
                           help="a study's server name and table (repeat, in login order)")
    reference.add_argument("--call", required=True, help="the ds.lmerSLMA(...) call, with dataName = \"D\"")
    reference.add_argument("--out", type=Path, required=True, metavar="CASE_DIR")
    reference.add_argument("--case-id", default=None, help="default: the folder's name")
    reference.add_argument("--backend", default="local", choices=list(BACKENDS))
    reference.set_defaults(handler=_reference)

    generate = sub.add_parser("generate", help="a seeded synthetic suite with its reference answers")
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--out", type=Path, required=True, metavar="DIR")
    generate.add_argument("--size", default="small", help="rows per study: small (64), medium (500), large (5000)")
    generate.add_argument("--cases", default=None, help="comma-separated case ids (default: every case)")
    generate.add_argument("--no-reference", action="store_true", help="write the inputs only (no R)")
    generate.add_argument("--backend", default="local", choices=list(BACKENDS))
    generate.set_defaults(handler=_generate)

    score = sub.add_parser("score", help="grade an implementation against a suite")
    which = score.add_mutually_exclusive_group(required=True)
    which.add_argument("--impl", metavar="MODULE[:OBJECT]", help="a Python object with fit_study [and pool]")
    which.add_argument("--impl-cmd", metavar="'CMD'", help="run as CMD INPUT.json OUTPUT.json")
    which.add_argument("--impl-server", metavar="MODULE[:OBJECT]",
                       help="a study server under test: an object with serve(studies, api) yielding its logins "
                            "(e.g. pydsbase.conformance.servers:PYDSBASE)")
    which.add_argument("--impl-server-cmd", metavar="'CMD'",
                       help="a study server under test: CMD STUDIES.json prints one JSON login per line and "
                            "serves until SIGTERM (e.g. 'pydsbase studies up --engine process --studies-json')")
    score.add_argument("--impl-server-api", default="opal", choices=["opal", "armadillo"],
                       help="the API a server under test is spoken to in (pydsbase.OpalDriver or ArmadilloDriver)")
    score.add_argument("--suite", type=Path, required=True, help="a suite folder or one case folder")
    score.add_argument("--out", type=Path, required=True, metavar="REPORT_DIR")
    score.add_argument("--min-tier", default="lre6", choices=["identical", "ulp4", "lre10", "lre6", "lre3"],
                       help="JUnit failure below this tier (default lre6)")
    score.set_defaults(handler=_score)


def _study(text: str) -> tuple[str, Path]:
    name, sep, csv = text.partition("=")
    if not sep or not name or not csv:
        raise argparse.ArgumentTypeError(f"expected NAME=CSV, got {text!r}")
    return name, Path(csv)


def _reference(args: argparse.Namespace) -> int:
    from pydsbase.conformance.reference import CaseInput, make_references

    case = CaseInput(args.case_id or args.out.resolve().name, tuple(args.study), args.call)
    for path in make_references([(case, args.out)], args.backend):
        print(path)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pydsbase.conformance.generate import generate_suite

    cases = [c for c in args.cases.split(",") if c] if args.cases else None
    for path in generate_suite(args.seed, args.out, args.size, cases, not args.no_reference, args.backend):
        print(path)
    return 0


def _score(args: argparse.Namespace) -> int:
    from pydsbase.conformance.plugins import load_implementation
    from pydsbase.conformance.score import score_suite, terminal_table, write_reports
    from pydsbase.conformance.servers import load_server

    if args.impl_server is not None or args.impl_server_cmd is not None:
        impl: Any = load_server(args.impl_server, args.impl_server_cmd, args.impl_server_api)
    else:
        impl = load_implementation(args.impl, args.impl_cmd)
    lines = score_suite(args.suite, impl, on_case=lambda name: print(f"scoring {name}", file=sys.stderr))
    print(terminal_table(lines))
    for kind, path in write_reports(lines, args.out, impl.name, args.min_tier).items():
        print(f"{kind}: {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    for path in run_cases(args.cases, args.data_root, args.out_dir, args.backend or ["local"]):
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
