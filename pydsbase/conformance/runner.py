"""Replay validation cases against pydsbase and write what happened, in the golden files' encoding.

A case file is read for ``case_id``, ``studies``, ``login``, ``disclosure_settings``,
``setup[].call`` and ``call`` only; nothing here opens a golden result. Per case: a temporary
folder per study holds only that study's CSV as ``TABLE.csv``, the launcher (``pydsbase.studies``,
engine local, process or docker) stands the studies up and gives one login record each, the
session logs in and assigns the table to ``login.symbol`` with ``login.variables``, the setup
calls are replayed, then the call under test. The output
``OUT/<case_id>.json`` has ``outcome``, ``result``, ``error`` {message, class},
``datashield_errors``, ``stdout``, ``messages`` and ``warnings``.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datashield.interface import DSLoginInfo

from pydsbase import console
from pydsbase.conformance.rcall import ConnsIndex, ParsedCall, RFunction, bind, parse_call
from pydsbase.dsi import DataSHIELDErrors
from pydsbase.errors import RError
from pydsbase.rvalue import RList, RValue, r_character, to_node
from pydsbase.studies import Api, Engine, StudiesUp, copied_studies, studies_up

__all__ = [
    "BACKENDS",
    "BACKEND_APIS",
    "backend_studies",
    "CaseSpec",
    "StudySpec",
    "backend_logins",
    "case_logins",
    "case_studies",
    "read_case",
    "run_case",
    "run_cases",
]

CASE_KEYS = ("case_id", "studies", "login", "disclosure_settings", "setup", "call")


@dataclass(frozen=True)
class StudySpec:
    server: str
    table: str
    csv: str


@dataclass(frozen=True)
class CaseSpec:
    case_id: str
    studies: tuple[StudySpec, ...]
    symbol: str
    variables: tuple[str, ...] | None
    disclosure_settings: Any
    setup_calls: tuple[str, ...]
    call: str


def _text(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list) else str(value)


def read_case(path: Path) -> CaseSpec:
    """The parts of a case file the runner may use; every other key is left unread."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    allowed = {k: raw[k] for k in CASE_KEYS if k in raw}
    login = allowed.get("login") or {}
    call = allowed["call"]
    variables = login.get("variables")
    return CaseSpec(
        case_id=str(allowed["case_id"]),
        studies=tuple(StudySpec(s["server"], s["table"], s["csv"]) for s in allowed["studies"]),
        symbol=str(login.get("symbol") or "D"),
        variables=None if variables is None else tuple(variables),
        disclosure_settings=allowed.get("disclosure_settings"),
        setup_calls=tuple(_text(step["call"]) for step in allowed.get("setup") or []),
        call=_text(call["text"] if isinstance(call, dict) else call),
    )


# -- backends -------------------------------------------------------------------------------------

BACKENDS: dict[str, Engine] = {"local": "local", "http": "process", "docker": "docker",
                               "armadillo": "process", "armadillo-docker": "docker"}
"""``--backend`` name -> the launcher's engine (``pydsbase.studies``)."""
BACKEND_APIS: dict[str, Api] = {"armadillo": "armadillo", "armadillo-docker": "armadillo"}
"""The backends whose login records speak Armadillo's API (``pydsbase.ArmadilloDriver``); the others, Opal's."""


def backend_studies(folders: Mapping[str, Path], backend: str) -> contextlib.AbstractContextManager[StudiesUp]:
    """``studies_up`` for a ``--backend`` name: its engine, and the API of its login records."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    return studies_up(folders, BACKENDS[backend], api=BACKEND_APIS.get(backend, "opal"))


@contextlib.contextmanager
def case_studies(case: CaseSpec, data_root: Path, backend: str = "local") -> Iterator[StudiesUp]:
    """The case's studies stood up by the launcher for ``backend``: one temporary folder per study
    holding a copy of only its CSV (as TABLE.csv). Everything is removed afterwards."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    tables = {study.server: {study.table: data_root / study.csv} for study in case.studies}
    with copied_studies(tables, prefix=f"pydsbase-{case.case_id}-") as folders, \
            backend_studies(folders, backend) as federation:
        yield federation


@contextlib.contextmanager
def case_logins(case: CaseSpec, data_root: Path, backend: str = "local") -> Iterator[list[DSLoginInfo]]:
    """The login records of the case's studies stood up for ``backend`` (:func:`case_studies`)."""
    with case_studies(case, data_root, backend) as federation:
        yield federation.logins


def backend_logins(federation: StudiesUp, backend: str) -> list[DSLoginInfo]:
    """The login records of running studies for ``backend``: its API on servers that answer both."""
    if BACKENDS[backend] != federation.engine:
        raise ValueError(f"backend {backend!r} runs on engine {BACKENDS[backend]!r}, not {federation.engine!r}")
    api = BACKEND_APIS.get(backend, "opal")
    return federation.logins if api == federation.api else federation.logins_for(api)


# -- the dsBaseClient functions a case may call ---------------------------------------------------


def _functions() -> dict[str, RFunction]:
    from pydsbase import lmer, workflow

    return {
        "ds.lmerSLMA": RFunction(lmer.ds_lmer_slma, (
            ("formula", "formula"), ("offset", "offset"), ("weights", "weights"),
            ("combine.with.metafor", "combine_with_metafor"), ("dataName", "data_name"), ("checks", "checks"),
            ("datasources", "datasources"), ("REML", "reml"), ("control_type", "control_type"),
            ("control_value", "control_value"), ("optimizer", "optimizer"), ("verbose", "verbose"),
            ("notify.of.progress", "notify_of_progress"), ("assign", "assign"), ("newobj", "newobj"),
        )),
        "ds.completeCases": RFunction(workflow.ds_complete_cases, (
            ("x1", "x1"), ("newobj", "newobj"), ("datasources", "datasources"),
        )),
        "ds.make": RFunction(workflow.ds_make, (
            ("toAssign", "to_assign"), ("newobj", "newobj"), ("datasources", "datasources"),
        )),
        "ds.dataFrame": RFunction(workflow.ds_data_frame, (
            ("x", "x"), ("row.names", "row_names"), ("check.rows", "check_rows"), ("check.names", "check_names"),
            ("stringsAsFactors", "strings_as_factors"), ("completeCases", "complete_cases"),
            ("DataSHIELD.checks", "datashield_checks"), ("newobj", "newobj"), ("datasources", "datasources"),
            ("notify.of.progress", "notify_of_progress"),
        )),
        "ds.Boole": RFunction(workflow.ds_boole, (
            ("V1", "v1"), ("V2", "v2"), ("Boolean.operator", "boolean_operator"),
            ("numeric.output", "numeric_output"), ("na.assign", "na_assign"), ("newobj", "newobj"),
            ("datasources", "datasources"),
        )),
        "ds.dataFrameSubset": RFunction(workflow.ds_data_frame_subset, (
            ("df.name", "df_name"), ("V1.name", "v1_name"), ("V2.name", "v2_name"),
            ("Boolean.operator", "boolean_operator"), ("keep.cols", "keep_cols"), ("rm.cols", "rm_cols"),
            ("keep.NAs", "keep_nas"), ("newobj", "newobj"), ("datasources", "datasources"),
            ("notify.of.progress", "notify_of_progress"),
        )),
        "ds.ls": RFunction(workflow.ds_ls, (("search.filter", "search_filter"), ("datasources", "datasources"))),
        "ds.dim": RFunction(workflow.ds_dim, (("x", "x"), ("type", "type"), ("datasources", "datasources"))),
        "ds.length": RFunction(workflow.ds_length, (("x", "x"), ("type", "type"), ("datasources", "datasources"))),
        "ds.numNA": RFunction(workflow.ds_num_na, (("x", "x"), ("datasources", "datasources"))),
        "ds.rm": RFunction(workflow.ds_rm, (("x.names", "x_names"), ("datasources", "datasources"))),
        "ds.c": RFunction(workflow.ds_c, (("x", "x"), ("newobj", "newobj"), ("datasources", "datasources"))),
        "ds.list": RFunction(workflow.ds_list, (("x", "x"), ("newobj", "newobj"), ("datasources", "datasources"))),
        "ds.names": RFunction(workflow.ds_names, (("xname", "xname"), ("datasources", "datasources"))),
        "ds.levels": RFunction(workflow.ds_levels, (("x", "x"), ("datasources", "datasources"))),
        "ds.summary": RFunction(workflow.ds_summary, (("x", "x"), ("datasources", "datasources"))),
        **{
            f"ds.{r_name}": RFunction(function, (("x.name", "x_name"), ("newobj", "newobj"),
                                                 ("datasources", "datasources")))
            for r_name, function in (("asCharacter", workflow.ds_as_character), ("asInteger", workflow.ds_as_integer),
                                     ("asLogical", workflow.ds_as_logical),
                                     ("asDataMatrix", workflow.ds_as_data_matrix), ("asList", workflow.ds_as_list))
        },
    }


def call_function(session: Any, call: ParsedCall, functions: dict[str, RFunction]) -> Any:
    """Run one parsed dsBaseClient call on the session."""
    if call.function not in functions:
        raise ValueError(f"unsupported function {call.function}")
    function = functions[call.function]
    kwargs = bind(call, function)
    names = list(session.get_connection_names())
    for key, value in list(kwargs.items()):
        if isinstance(value, ConnsIndex):
            kwargs[key] = value.select(names)
        elif isinstance(value, list) and key != "datasources" and len(value) == 1:
            kwargs[key] = value[0]
    return function.python(session, **kwargs)


# -- running ---------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """``capture.output``'s lines: split at newlines, no empty line after a final newline."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _error_record(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RError):
        return {"message": exc.message, "class": list(exc.r_class)}
    return {"message": f"{type(exc).__name__}: {exc}", "class": ["python", type(exc).__name__]}


def _errors_node(exc: BaseException) -> Any:
    if not isinstance(exc, DataSHIELDErrors):
        return None
    errors = exc.datashield_errors
    value = RList([r_character(m) for m in errors.values()], names=list(errors))
    return to_node(value)


def run_case(case: CaseSpec, data_root: Path, backend_name: str = "local",
             logins: Sequence[DSLoginInfo] | None = None) -> dict[str, Any]:
    """Run one case and return its output record: on studies stood up for it with ``backend_name``,
    or on the already running studies of ``logins`` (one per case study, holding its table)."""
    from pydsbase.session import Session

    functions = _functions()
    record: dict[str, Any] = {
        "case_id": case.case_id,
        "outcome": "error",
        "result": None,
        "error": None,
        "datashield_errors": None,
        "stdout": [],
        "messages": [],
        "warnings": [],
    }
    studies = case_logins(case, data_root, backend_name) if logins is None else contextlib.nullcontext(list(logins))
    with studies as study_logins:
        session = Session(study_logins)
        try:
            session.open()
            tables = {study.server: study.table for study in case.studies}
            variables = None if case.variables is None else list(case.variables)
            session.assign_table(case.symbol, tables=tables, variables=variables)
            setup_out = io.StringIO()
            with contextlib.redirect_stdout(setup_out), console.capture_conditions():
                for text in case.setup_calls:
                    call_function(session, parse_call(text), functions)
            parsed = parse_call(case.call)
            out = io.StringIO()
            result: RValue | None = None
            with console.capture_conditions() as conditions:
                try:
                    with contextlib.redirect_stdout(out):
                        result = call_function(session, parsed, functions)
                    record["outcome"] = "returned"
                    record["result"] = to_node(result)
                except Exception as exc:  # the call's error is the case's outcome
                    record["error"] = _error_record(exc)
                    record["datashield_errors"] = _errors_node(exc)
            record["stdout"] = _lines(out.getvalue())
            record["messages"] = conditions.messages
            record["warnings"] = conditions.warnings
        except Exception as exc:  # login or setup failed: the case fails with that error
            record["outcome"] = "error"
            record["error"] = _error_record(exc)
            record["datashield_errors"] = _errors_node(exc)
        finally:
            with contextlib.suppress(Exception):
                session.close()
    return record


def run_cases(paths: Sequence[Path], data_root: Path, out_dir: Path,
              backend_name: str | Sequence[str] = "local") -> list[Path]:
    """Run every case; write ``out_dir/<case_id>.json`` for each; return the files written.

    Cases with the same studies (server names, tables, CSV files) share one set of study servers,
    stood up once: each case still logs in afresh and gets new R sessions, so nothing of one case is
    seen by the next. On the local backend the study processes are kept between logins
    (:func:`pydsbase.drivers.local.reuse_workers`). Several backends of one engine (``http`` and
    ``armadillo``; ``docker`` and ``armadillo-docker``: the same servers through each API) share the
    stand-up too, each case running once per backend into ``out_dir/<backend>/<case_id>.json``. Each
    output is written as its case ends.
    """
    from pydsbase.drivers.local import reuse_workers

    backends = [backend_name] if isinstance(backend_name, str) else list(backend_name)
    engines = {BACKENDS.get(b) for b in backends}
    if not backends or None in engines or len(engines) != 1:
        raise ValueError(f"backends of one engine, from {', '.join(BACKENDS)}; not {backends!r}")
    targets = {b: out_dir / b if len(backends) > 1 else out_dir for b in backends}
    for target in targets.values():
        target.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[StudySpec, ...], list[CaseSpec]] = {}
    for case in map(read_case, paths):
        groups.setdefault(case.studies, []).append(case)
    written = []
    for group in groups.values():
        with case_studies(group[0], data_root, backends[0]) as federation, reuse_workers():
            for backend in backends:
                logins = backend_logins(federation, backend)
                for case in group:
                    record = run_case(case, data_root, backend, logins)
                    target = targets[backend] / f"{case.case_id}.json"
                    target.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n", encoding="utf-8")
                    written.append(target)
    return written
