"""Reference answers for any data: a ds.lmerSLMA call on given study tables, written as a case folder.

A case folder (``CASE_DIR``) holds:

- ``case.json``: the inputs, in the golden files' case layout (``case_id``, ``studies`` with ``server``,
  ``table`` and ``csv`` relative to the folder, ``login``, ``call.text``) plus ``description``,
  ``features`` and ``spec`` (the plug-in contract's formula, REML, weights, offset and control), so
  ``pydsbase conformance run CASE_DIR/case.json --data-root CASE_DIR`` replays it too;
- ``data/<server>.csv``: each study's table, the very bytes R read;
- ``result.json``: what the call gave, as the conformance runner writes it (``outcome``, the
  R-compatible ``result`` node, ``error``, ``datashield_errors``, ``stdout``, ``messages``, ``warnings``);
- ``reference.tsv``: every reference number as a hex double under its canonical key
  (:mod:`pydsbase.conformance.numbers`);
- ``structure.json``: each study's status (``fitted``, ``disclosure``, ``fit_error``, ``server_error``,
  ``not_selected``) with its message, lme4's convergence messages and whether lme4 converged
  (:attr:`pydsbase.results.StudyFit.converged`), the terms, and the pooling failures;
- ``environment.json``: R, lme4, Matrix, nloptr, BLAS/LAPACK, the numerics pins, pydsbase and Python.

Every file but ``environment.json`` is a function of the inputs alone (sorted keys, fixed formatting).
All cases given to :func:`make_references` run on one federation stood up once (the runner's
:func:`~pydsbase.conformance.runner.run_case` on a subset of its logins).
"""

from __future__ import annotations

import json
import platform
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydsbase.conformance import numbers
from pydsbase.conformance.numbers import Key
from pydsbase.conformance.rcall import ConnsIndex, bind, parse_call
from pydsbase.conformance.runner import BACKENDS, CaseSpec, StudySpec, backend_studies, run_case

__all__ = ["CASE_SCHEMA", "CaseInput", "call_spec", "load_case", "make_references", "write_json"]

CASE_SCHEMA = "pydsbase-conformance-case/1"
_TABLE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class CaseInput:
    """One case to reference: its id, its studies (server -> CSV, in login order) and the call text."""

    case_id: str
    studies: tuple[tuple[str, Path], ...]
    call: str
    description: str = ""
    features: tuple[str, ...] = field(default=())


def write_json(path: Path, value: Any) -> None:
    """JSON as every kit file is written: sorted keys, one-space indent, no NaN, final newline."""
    path.write_text(json.dumps(value, indent=1, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def call_spec(call: str) -> dict[str, Any]:
    """The plug-in contract's view of a ds.lmerSLMA call text (nothing evaluated)."""
    from pydsbase.conformance.runner import _functions

    parsed = parse_call(call)
    if parsed.function != "ds.lmerSLMA":
        raise ValueError(f"a reference case calls ds.lmerSLMA, not {parsed.function}")
    kwargs = bind(parsed, _functions()["ds.lmerSLMA"])
    control = kwargs.get("control_value")
    if isinstance(control, list) and len(control) == 1:
        control = control[0]
    return {
        "formula": kwargs.get("formula"),
        "REML": bool(kwargs.get("reml", True)),
        "weights": _column(kwargs.get("weights")),
        "offset": _column(kwargs.get("offset")),
        "control_type": kwargs.get("control_type"),
        "control_value": control,
        "optimizer": kwargs.get("optimizer"),
        "datasources": kwargs.get("datasources"),
    }


def _column(name: Any) -> str | None:
    """``"D$w"`` (a column of the assigned table, as ds.lmerSLMA takes it) is column ``w``."""
    if name is None:
        return None
    text = str(name[0] if isinstance(name, list) else name)
    return text.split("$", 1)[1] if "$" in text else text


def _selected(call: str, servers: Sequence[str]) -> list[str]:
    chosen = call_spec(call)["datasources"]
    return chosen.select(list(servers)) if isinstance(chosen, ConnsIndex) else list(servers)


def load_case(case_dir: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    if raw.get("schema") != CASE_SCHEMA:
        raise ValueError(f"{case_dir}: not a conformance case ({raw.get('schema')!r})")
    return raw


def _write_inputs(case: CaseInput, case_dir: Path) -> dict[str, Any]:
    (case_dir / "data").mkdir(parents=True, exist_ok=True)
    studies = []
    for server, csv in case.studies:
        target = case_dir / "data" / f"{server}.csv"
        if Path(csv).resolve() != target.resolve():
            shutil.copyfile(csv, target)
        studies.append({"server": server, "table": _table_name(case.case_id, server), "csv": f"data/{server}.csv"})
    spec = call_spec(case.call)
    spec.pop("datasources")
    raw = {
        "schema": CASE_SCHEMA,
        "case_id": case.case_id,
        "description": case.description,
        "features": list(case.features),
        "studies": studies,
        "login": {"symbol": "D", "variables": None},
        "call": {"text": case.call},
        "spec": spec,
    }
    write_json(case_dir / "case.json", raw)
    return raw


def _table_name(case_id: str, server: str) -> str:
    return _TABLE.sub("_", f"{case_id}__{server}")


def _runner_case(raw: Mapping[str, Any]) -> CaseSpec:
    studies = tuple(StudySpec(s["server"], s["table"], s["csv"]) for s in raw["studies"])
    return CaseSpec(raw["case_id"], studies, "D", None, None, (), raw["call"]["text"])


def make_references(cases: Sequence[tuple[CaseInput, Path]], backend: str = "local") -> list[Path]:
    """Write each case's folder (``cases``: (case, folder) pairs); every case runs on one federation.

    The federation has one study per server name used by any case, holding every case's table for it;
    each case logs in afresh to its own servers (new R sessions) and assigns its own table as ``D``.
    """
    from pydsbase.conformance.runner import _functions  # noqa: F401  (fail early if the client is broken)
    from pydsbase.drivers.local import reuse_workers
    from pydsbase.studies import copied_studies

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    raws = [(_write_inputs(case, folder), folder) for case, folder in cases]
    tables: dict[str, dict[str, Path]] = {}
    for raw, folder in raws:
        for study in raw["studies"]:
            tables.setdefault(study["server"], {})[study["table"]] = folder / study["csv"]
    written = []
    with copied_studies(tables, prefix="pydsbase-reference-") as folders, \
            backend_studies(folders, backend) as federation, reuse_workers():
        by_name = {login.name: login for login in federation.logins}
        environment = _environment(federation.logins[:1])
        for raw, folder in raws:
            spec = _runner_case(raw)
            logins = [by_name[s.server] for s in spec.studies]
            record = run_case(spec, folder, backend, logins)
            record.pop("case_id", None)
            write_json(folder / "result.json", record)
            servers = [s.server for s in spec.studies]
            selected = _selected(spec.call, servers)
            summaries = _summaries(record, selected)
            if summaries is None:  # the call stopped (e.g. coefficient sets differ): ask the studies directly
                summaries = _study_answers(spec, [by_name[s] for s in selected])
            table, structure = reference_numbers(summaries, servers, record.get("outcome"))
            (folder / "reference.tsv").write_text(numbers.write_table(table), encoding="utf-8")
            write_json(folder / "structure.json", structure)
            write_json(folder / "environment.json", environment)
            written.append(folder)
    return written


Answers = dict[str, Any]
"""server -> its lmerSLMADS2 answer (an RValue), or the exception its call raised."""


def _summaries(record: Mapping[str, Any], selected: Sequence[str]) -> Answers | None:
    """The studies' answers inside the call's value (None when the call did not return one)."""
    from pydsbase.results import study_summaries
    from pydsbase.rvalue import RList, from_node

    value = from_node(record.get("result")) if record.get("outcome") == "returned" else None
    if not isinstance(value, RList):
        return None
    try:
        return dict(zip(selected, study_summaries(value, len(selected)), strict=True))
    except ValueError:
        return None


def _study_answers(spec: CaseSpec, logins: Sequence[Any]) -> Answers:
    """Each study's lmerSLMADS2 answer to the case's call, sent as ds_lmer_slma sends it."""
    from pydsbase import dsi
    from pydsbase.lmer import lmer_call_text
    from pydsbase.session import Session

    call = call_spec(spec.call)
    expr = lmer_call_text(call["formula"], _dollar(call["offset"]), _dollar(call["weights"]), "D", call["REML"],
                          call["control_type"], call["control_value"], call["optimizer"])
    names = [login.name for login in logins]
    session = Session(list(logins))
    try:
        session.open()
        session.assign_table(spec.symbol, tables={s.server: s.table for s in spec.studies if s.server in names})
        answers, errors = dsi.aggregate_by_study(session, expr, names)
    except Exception as exc:  # login or assign failed: every study has that error
        return {name: exc for name in names}
    finally:
        session.close()
    return {name: errors[name] if name in errors else answers.get(name) for name in names}


def _dollar(column: str | None) -> str | None:
    return None if column is None else f"D${column}"


def reference_numbers(answers: Answers, servers: Sequence[str],
                      outcome: str | None) -> tuple[dict[Key, float], dict[str, Any]]:
    """The flat table and the structure of one case from its studies' answers."""
    from pydsbase.results import aligned_terms, pool_terms, study_fit

    statuses: dict[str, dict[str, Any]] = {s: {"status": "not_selected"} for s in servers}
    table: dict[Key, float] = {}
    included = []
    for server, answer in answers.items():
        fit = study_fit(server, answer)
        statuses[server] = {
            "status": "fitted" if fit.exclusion is None else fit.exclusion.kind,
            "message": None if fit.exclusion is None else fit.exclusion.message,
            "convergence": list(fit.convergence),
            "converged": fit.converged,
        }
        if not isinstance(answer, Exception):
            for (term, quantity), number in numbers.study_numbers(answer).items():
                table[(server, None, term, quantity)] = number
        if fit.included:
            included.append(fit)
    terms = aligned_terms([f.terms for f in included])
    failures = []
    for pooled in pool_terms(included, terms, numbers.metafor_pool)[0]:
        if pooled.error is not None:
            failures.append({"term": pooled.term, "method": pooled.method, "message": str(pooled.error)})
            continue
        for quantity in numbers.POOLED_QUANTITIES:
            table[(None, pooled.method, pooled.term, quantity)] = float(pooled.fit[quantity])
        table[(None, pooled.method, pooled.term, "k")] = float(len(pooled.studies))
    structure = {"outcome": outcome, "studies": statuses, "terms": terms, "pooling_failures": failures}
    return table, structure


def _environment(logins: Sequence[Any]) -> dict[str, Any]:
    """The reference stack's fingerprint: the study server's ``info`` and this client's versions."""
    from importlib import metadata

    from pydsbase.session import Session

    info: dict[str, Any] = {}
    session = Session(list(logins))
    try:
        session.open()
        info = dict(session.conns[0].info()) if session.conns else {}
    finally:
        session.close()
    info.pop("study", None)
    info.pop("load", None)
    versions = {"pydsbase": metadata.version("pydsbase"), "python": platform.python_version()}
    for package in ("numpy", "pandas", "rpy2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None  # type: ignore[assignment]
    return {"study_server": info, "client": versions, "machine": platform.machine()}
