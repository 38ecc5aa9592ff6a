"""The analyst's command line: ``pydsbase lmer`` fits an lmer model in every study and pools it.

    pydsbase lmer --config studies.yml --table CLUSTER_INT \\
        --formula "BMI ~ trtGrp + Male + (1|idDoctor)" --output table

- ``--config``: the logins, a YAML file in the ``datashield`` package's format
  (``servers: [{name, url, user, password | token, driver}, ...]``, read with
  ``datashield.interface.DSConfig.load_from_file``).
- ``--table``: assign this table to ``--symbol`` (default ``D``) in every study first; ``NAME=TABLE``
  (repeatable) gives a study its own table. ``--data-name`` defaults to that symbol.
- the model arguments of ``ds_lmer_slma`` (``--offset``, ``--weights``, ``--ml`` for REML = FALSE,
  ``--control-type``, ``--control-value``, ``--optimizer``, ``--verbose``, ``--studies``).
- ``--output``: ``table`` (the pooled table, studies and reasons), ``json`` (the whole result),
  ``r-json`` (the R-compatible value as a JSON node), ``plot`` (one forest plot per term, PNG and
  SVG, into ``--plot-dir``).

Exit status: 0 when at least one term was pooled, 1 when nothing could be pooled (the reasons are
printed), 2 for bad arguments or logins.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pydsbase.results import SLMAResult

__all__ = ["main", "register_cli", "run_lmer"]

OUTPUTS = ("table", "json", "r-json", "plot")


def register_cli(subparsers: Any) -> None:
    """Add ``lmer`` to a ``pydsbase`` command line (an argparse subparsers object)."""
    p = subparsers.add_parser(
        "lmer",
        help="fit an lmer model in every study and pool it (ds_lmer_slma)",
        description="Fit lme4::lmer in every study and pool each coefficient by study-level meta-analysis "
        "(metafor ML, REML and FE), with coefficients matched by name across studies.",
    )
    p.add_argument("--config", required=True, type=Path, help="logins: a datashield YAML config file")
    p.add_argument("--formula", required=True, help='e.g. "BMI ~ trtGrp + Male + (1|idDoctor)"')
    p.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="TABLE|NAME=TABLE",
        help="assign this table to --symbol in every study (NAME=TABLE for one study)",
    )
    p.add_argument("--symbol", default="D", help="the symbol --table is assigned to (default D)")
    p.add_argument("--variables", help="comma-separated columns to load with --table")
    p.add_argument("--data-name", help="the data frame the formula's variables are in (default: --symbol)")
    p.add_argument("--offset")
    p.add_argument("--weights")
    p.add_argument("--ml", action="store_true", help="maximum likelihood (REML = FALSE)")
    p.add_argument("--control-type")
    p.add_argument("--control-value")
    p.add_argument("--optimizer")
    p.add_argument("--verbose", type=int, default=0)
    p.add_argument("--studies", nargs="+", metavar="NAME", help="only these studies (default: all in --config)")
    p.add_argument("--output", choices=OUTPUTS, default="table")
    p.add_argument("--method", choices=["ML", "REML", "FE"], help="table output: only this pooling method")
    p.add_argument("--plot-dir", type=Path, default=Path("forest-plots"), help="plot output folder")
    p.add_argument("--plot-format", nargs="+", choices=["png", "svg", "pdf"], default=["png", "svg"])
    p.add_argument("--progress", action="store_true", help="a per-study progress bar on stderr")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for each call")
    p.set_defaults(handler=run_lmer)



def run_lmer(opts: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``pydsbase lmer`` with parsed options; write the output to ``out`` (stdout)."""
    from datashield.interface import DSConfig
    from pydantic import ValidationError

    from pydsbase.results import lmer_slma_result
    from pydsbase.session import Session

    out = sys.stdout if out is None else out
    try:
        config = DSConfig.load_from_file(str(opts.config))
    except (OSError, ValidationError, ValueError) as exc:
        return _fail(f"cannot read logins from {opts.config}: {exc}")
    if not config.servers:
        return _fail(f"{opts.config} lists no servers")
    try:
        tables = _tables(opts.table, [s.name for s in config.servers])
    except ValueError as exc:
        return _fail(str(exc))
    data_name = opts.data_name or (opts.symbol if tables else None)

    with Session(config.servers, timeout=opts.timeout) as session:
        if tables:
            default, per_study = tables
            session.assign_table(
                opts.symbol,
                table=default,
                tables=per_study or None,
                variables=opts.variables.split(",") if opts.variables else None,
                conn_names=opts.studies,
            )
        try:
            result = lmer_slma_result(
                session,
                opts.formula,
                offset=opts.offset,
                weights=opts.weights,
                data_name=data_name,
                reml=not opts.ml,
                control_type=opts.control_type,
                control_value=opts.control_value,
                optimizer=opts.optimizer,
                verbose=opts.verbose,
                datasources=opts.studies,
                progress=opts.progress,
            )
        except ValueError as exc:
            return _fail(str(exc))
    _write(result, opts, out)
    return 0 if result.pooled else 1


def _write(result: SLMAResult, opts: argparse.Namespace, out: TextIO) -> None:
    if opts.output == "json":
        out.write(result.to_json() + "\n")
    elif opts.output == "r-json":
        from pydsbase.rvalue import dumps

        out.write(dumps(result.r_value) + "\n")
    elif opts.output == "plot":
        from pydsbase.plots import save_forest_plots

        for path in save_forest_plots(result, opts.plot_dir, formats=opts.plot_format):
            out.write(f"{path}\n")
        for exclusion in result.exclusions:
            out.write(f"# not pooled: {exclusion}\n")
    else:
        out.write(result.text(opts.method) + "\n")


def _tables(specs: Sequence[str], servers: Sequence[str]) -> tuple[str | None, dict[str, str]] | None:
    if not specs:
        return None
    default: str | None = None
    per_study: dict[str, str] = {}
    for spec in specs:
        name, sep, table = spec.partition("=")
        if not sep:
            if default is not None:
                raise ValueError("give one --table TABLE for all studies, or NAME=TABLE per study")
            default = spec
        elif name not in servers:
            raise ValueError(f"--table {spec}: no study named {name!r} in the config ({', '.join(servers)})")
        elif not table:
            raise ValueError(f"--table {spec}: no table given")
        else:
            per_study[name] = table
    return default, per_study


def _fail(message: str) -> int:
    print(f"pydsbase lmer: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``pydsbase lmer ARGS...`` with ARGS given (``lmer`` may lead); the same as ``python -m pydsbase lmer``."""
    from pydsbase.__main__ import main as pydsbase_main

    args = list(sys.argv[1:] if argv is None else argv)
    return pydsbase_main(args if args[:1] == ["lmer"] else ["lmer", *args])
