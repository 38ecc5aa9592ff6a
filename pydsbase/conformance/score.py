"""Grade an implementation against a suite: ``pydsbase conformance score --impl ... --suite DIR --out REPORT``.

Every reference number of every case (``reference.tsv``) becomes one graded line (``scores.jsonl``):
its ULP distance and LRE digits and a tier (:func:`pydsbase.conformance.numbers.grade`), or
``not_reported`` (the answer lacks it), ``unsupported`` (the plug-in raised ``NotImplementedError``),
``error`` (it raised anything else) or ``structure`` (a term, a variance component or a study's
exclusion that differs: a term the implementation lacks or adds is a ``structure`` line). Per fitted
reference study, lme4's convergence is graded too (``converged``, ``messages``). Studies the reference
refused for disclosure are not sent to ``fit_study``; a server-level plug-in
(:mod:`pydsbase.conformance.servers`) gets every study and is graded on its refusals (``refusal``
lines). The implementation's coefficients are pooled per term and method by its ``pool`` when it has
one, else by pydsbase's port of metafor, through :func:`pydsbase.results.pool_terms`, over the studies
that gave a finite estimate and a positive SE, as the reference pooled its own. A plug-in that raises
never stops the run.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pandas as pd

from pydsbase.conformance import numbers
from pydsbase.conformance.numbers import TIERS, Key, PoolFunction, as_float, grade
from pydsbase.conformance.plugins import CommandImplementation, PythonImplementation
from pydsbase.conformance.reference import load_case
from pydsbase.conformance.servers import CommandServer, PythonServer, RunningServer

__all__ = ["LINE_KEYS", "Line", "score_case", "score_suite", "suite_cases", "write_reports"]

LINE_KEYS = ("case", "study", "method", "term", "quantity", "reference", "value", "ulp", "lre", "tier")
_STUDY_SCALARS = ("sigma", "logLik", "REMLcrit", "deviance", "Ntotal", "Nvalid", "Nmissing")
_NOT_SENT = ("disclosure", "not_selected")
_FAILING = ("worse", "error", "structure")
_SKIPPED = ("not_reported", "unsupported")
_NUMERIC = ("identical", "ulp4", "lre10", "lre6", "lre3", "worse")
_SEVERITY = {t: i for i, t in enumerate(
    ("identical", "ulp4", "lre10", "lre6", "lre3", "not_reported", "unsupported", "worse", "error", "structure"))}
_COLOURS = {"identical": "#1a9850", "ulp4": "#66bd63", "lre10": "#a6d96a", "lre6": "#fee08b", "lre3": "#fdae61",
            "worse": "#d73027", "not_reported": "#d9d9d9", "unsupported": "#bdbdbd", "error": "#762a83",
            "structure": "#4575b4"}


@dataclass(frozen=True)
class Line:
    case: str
    study: str | None
    method: str | None
    term: str | None
    quantity: str
    reference: float | None
    value: float | None
    ulp: int | None
    lre: float | None
    tier: str

    def as_json(self) -> dict[str, Any]:
        return {
            "case": self.case, "study": self.study, "method": self.method, "term": self.term,
            "quantity": self.quantity, "reference": _json_number(self.reference), "value": _json_number(self.value),
            "ulp": self.ulp, "lre": None if self.lre is None else round(self.lre, 2), "tier": self.tier,
        }


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")


Impl = PythonImplementation | CommandImplementation
Server = PythonServer | CommandServer


def _graded(case: str, key: Key, reference: float | None, value: Any) -> Line:
    study, method, term, quantity = key
    if reference is None or value is None:
        raise AssertionError("graded lines need both numbers")
    number = as_float(value)
    result = grade(reference, number)
    return Line(case, study, method, term, quantity, reference, number, result.ulp, result.lre, result.tier)


def _flat(case: str, key: Key, reference: float | None, tier: str, value: Any = None) -> Line:
    study, method, term, quantity = key
    return Line(case, study, method, term, quantity, reference, None if value is None else as_float(value),
                None, None, tier)


def _coefficients(answer: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = answer.get("coefficients") or {}
    if not isinstance(found, Mapping):
        raise TypeError("coefficients must be a dict {term: {estimate, se}}")
    return {str(t): dict(v) for t, v in found.items()}


def _study_lines(case: str, server: str, reference: Mapping[Key, float], answer: Mapping[str, Any],
                 recorded: Mapping[str, Any]) -> list[Line]:
    """A fitted reference study's lines: every reference number, the terms and variance components the
    answer adds, and lme4's convergence (``recorded``: the study's entry of ``structure.json``)."""
    lines: list[Line] = []
    coefficients = _coefficients(answer)
    components = answer.get("variance_components")
    components = None if components is None else {str(k): v for k, v in dict(components).items()}
    ref_terms: list[str] = []
    ref_components: set[str] = set()
    for key, ref in reference.items():
        _, _, term, quantity = key
        if quantity in ("estimate", "se"):
            assert term is not None
            if quantity == "estimate":
                ref_terms.append(term)
            if term not in coefficients:
                lines.append(_flat(case, key, ref, "structure"))
            elif coefficients[term].get(quantity) is None:
                lines.append(_flat(case, key, ref, "not_reported"))
            else:
                lines.append(_graded(case, key, ref, coefficients[term][quantity]))
        elif quantity == "variance_component":
            assert term is not None
            ref_components.add(term)
            if components is None:
                lines.append(_flat(case, key, ref, "not_reported"))
            elif term not in components:
                lines.append(_flat(case, key, ref, "structure"))
            else:
                lines.append(_graded(case, key, ref, components[term]))
        elif answer.get(quantity) is None:
            lines.append(_flat(case, key, ref, "not_reported"))
        else:
            lines.append(_graded(case, key, ref, answer[quantity]))
    for term, pair in coefficients.items():
        if term not in ref_terms:
            for quantity in ("estimate", "se"):
                lines.append(_flat(case, (server, None, term, quantity), None, "structure", pair.get(quantity)))
    for name, value in (components or {}).items():
        if name not in ref_components:
            lines.append(_flat(case, (server, None, name, "variance_component"), None, "structure", value))
    return lines + _convergence_lines(case, server, answer, recorded)


def _convergence_references(server: str, recorded: Mapping[str, Any]) -> dict[Key, float]:
    """lme4's convergence of a fitted reference study as graded lines' references: ``converged`` 1 or 0
    (when ``structure.json`` records it) and ``messages``, the number of lme4's convergence messages."""
    if recorded.get("status") != "fitted":
        return {}
    out: dict[Key, float] = {}
    if recorded.get("converged") is not None:
        out[(server, None, None, "converged")] = 1.0 if recorded["converged"] else 0.0
    out[(server, None, None, "messages")] = float(len(recorded.get("convergence") or []))
    return out


def _convergence_lines(case: str, server: str, answer: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[Line]:
    """``converged`` (1 or 0, graded as a number: equal is ``identical``, different ``worse``) and
    ``messages`` (reference and value are their counts; ``identical`` for lme4's texts in the same order,
    else ``worse``); ``not_reported`` when the answer lacks them. Cases made before ``structure.json``
    recorded ``converged`` have no ``converged`` line."""
    lines: list[Line] = []
    expected = [str(m) for m in recorded.get("convergence") or []]
    for key, ref in _convergence_references(server, recorded).items():
        given = answer.get(key[3])
        if given is None:
            lines.append(_flat(case, key, ref, "not_reported"))
        elif key[3] == "converged":
            lines.append(_graded(case, key, ref, 1.0 if given is True else 0.0 if given is False else given))
        else:
            texts = [given] if isinstance(given, str) else [str(m) for m in given]
            lines.append(Line(case, server, None, None, "messages", ref, float(len(texts)), None, None,
                              "identical" if texts == expected else "worse"))
    return lines


def _refusal_line(case: str, server: str, recorded: Mapping[str, Any], outcome: _Outcome) -> Line | None:
    """Server-level plug-ins: a study the reference or the server refused (disclosure, a failed fit, an R
    error). Reference and value: 1 refused, 0 fitted. Both refused: ``identical`` for the same status and
    message, else ``structure``; one refused: ``structure``. Both fitted: no line (the numbers speak)."""
    expected = recorded.get("status") != "fitted"
    refused = outcome.status != "fitted"
    if not expected and not refused:
        return None
    same = expected and refused and (recorded.get("status"), recorded.get("message")) == (outcome.status,
                                                                                          outcome.message)
    return Line(case, server, None, None, "refusal", float(expected), float(refused), None, None,
                "identical" if same else "structure")


@dataclass(frozen=True)
class _Outcome:
    """What one study gave: an answer (plug-in shape) with the server's status, or a failure tier."""

    answer: Mapping[str, Any] | None = None
    status: str = "fitted"
    message: str | None = None
    failure: str | None = None  # "unsupported" / "error": no answer at all


def _plugin_outcomes(case_dir: Path, raw: Mapping[str, Any], statuses: Mapping[str, Any],
                     impl: Impl) -> dict[str, _Outcome]:
    """``fit_study`` per study the reference did not refuse for disclosure (refusing is a server's job)."""
    outcomes: dict[str, _Outcome] = {}
    for study in raw["studies"]:
        server = study["server"]
        if statuses.get(server, {}).get("status", "not_selected") in _NOT_SENT:
            continue
        csv = (case_dir / study["csv"]).resolve()
        spec = {**raw["spec"], "csv": str(csv), "case": raw["case_id"], "study": server}
        try:
            answer = impl.fit_study(pd.read_csv(csv), spec)
            _coefficients(answer)
        except NotImplementedError:
            outcomes[server] = _Outcome(failure="unsupported")
        except Exception:  # any failure of the plug-in is graded, never raised
            outcomes[server] = _Outcome(failure="error")
        else:
            outcomes[server] = _Outcome(answer)
    return outcomes


def _server_outcomes(raw: Mapping[str, Any], running: RunningServer) -> dict[str, _Outcome]:
    """The case's call sent to the server under test; its answers read by the reference's own rule."""
    from pydsbase.conformance.reference import _selected, reference_numbers
    from pydsbase.errors import StudyRejectedError, StudyRFailedError

    servers = [s["server"] for s in raw["studies"]]
    selected = _selected(raw["call"]["text"], servers)
    answers = running.study_answers(raw, selected)
    broken = {s for s, a in answers.items()  # transport, login, timeout: no answer (R errors are refusals)
              if isinstance(a, Exception) and not isinstance(a, StudyRFailedError | StudyRejectedError)}
    table, structure = reference_numbers({s: a for s, a in answers.items() if s not in broken}, servers, None)
    outcomes: dict[str, _Outcome] = {}
    for server in selected:
        if server in broken:
            outcomes[server] = _Outcome(failure="error")
            continue
        got = structure["studies"][server]
        answer = numbers.table_answer(table, server)
        if got["status"] == "fitted":
            answer.update(converged=got["converged"], messages=got["convergence"])
        outcomes[server] = _Outcome(answer, got["status"], got["message"])
    return outcomes


def score_case(case_dir: Path, impl: Impl | RunningServer) -> list[Line]:
    """Every graded line of one case folder (a server-level plug-in: already running, see :func:`score_suite`)."""
    raw = load_case(case_dir)
    case = str(raw["case_id"])
    statuses = json.loads((case_dir / "structure.json").read_text(encoding="utf-8"))["studies"]
    table = numbers.read_table((case_dir / "reference.tsv").read_text(encoding="utf-8"))
    server_level = isinstance(impl, RunningServer)
    outcomes = _server_outcomes(raw, impl) if isinstance(impl, RunningServer) else \
        _plugin_outcomes(case_dir, raw, statuses, impl)
    lines: list[Line] = []
    fits: dict[str, dict[str, tuple[float, float]]] = {}
    failures: list[str] = []  # "unsupported" / "error" of studies that did not answer
    for study in raw["studies"]:
        server = study["server"]
        if server not in outcomes:
            continue
        outcome = outcomes[server]
        recorded = statuses.get(server, {"status": "not_selected"})
        reference = {k: v for k, v in table.items() if k[0] == server and k[1] is None}
        if outcome.failure is not None or outcome.answer is None:
            failures.append(outcome.failure or "error")
            graded = {**reference, **_convergence_references(server, recorded)}
            lines += [_flat(case, k, v, outcome.failure or "error") for k, v in graded.items()]
            continue
        answer = outcome.answer
        coefficients = _coefficients(answer)
        if server_level:
            refusal = _refusal_line(case, server, recorded, outcome)
            lines += [] if refusal is None else [refusal]
        try:
            if recorded.get("status") == "fitted":
                lines += _study_lines(case, server, reference, answer, recorded)
            elif server_level:  # the reference has no model here: what the study still tells (its counts)
                lines += [_flat(case, k, v, "not_reported") if answer.get(k[3]) is None
                          else _graded(case, k, v, answer[k[3]]) for k, v in reference.items()]
            else:  # a plug-in answered where lme4 failed: a structure error, and not pooled
                if coefficients:
                    lines.append(_flat(case, (server, None, None, "excluded"), 1.0, "structure", 0.0))
                continue
        except Exception:  # a malformed answer is an error of that study
            failures.append("error")
            graded = {**reference, **_convergence_references(server, recorded)}
            lines += [_flat(case, k, v, "error") for k, v in graded.items()]
            continue
        if outcome.status == "fitted":  # pooled as the client would pool this answer
            fits[server] = {t: (as_float(p.get("estimate")), as_float(p.get("se"))) for t, p in coefficients.items()}
    lines += _pooled_lines(case, table, fits, failures, impl)
    return lines


def _pool_function(impl: Impl | RunningServer) -> PoolFunction:
    if isinstance(impl, RunningServer) or not impl.has_pool:
        return numbers.metafor_pool

    def pool(yi: list[float], sei: list[float], method: str) -> Mapping[str, float]:
        answer = impl.pool(yi, sei, method)
        assert answer is not None
        return answer

    return pool


def _pooled_lines(case: str, table: Mapping[Key, float], fits: Mapping[str, Mapping[str, tuple[float, float]]],
                  failures: Sequence[str], impl: Impl | RunningServer) -> list[Line]:
    from pydsbase.results import StudyFit, pool_terms

    reference = {k: v for k, v in table.items() if k[0] is None}
    if not reference:
        return []
    if not fits:
        tier = "unsupported" if failures and all(f == "unsupported" for f in failures) else "error"
        return [_flat(case, k, v, tier) for k, v in reference.items()]
    terms = list(dict.fromkeys(k[2] for k in reference if k[2] is not None))
    studies = [StudyFit(server, {t: e for t, (e, _) in pairs.items()}, {t: se for t, (_, se) in pairs.items()})
               for server, pairs in fits.items()]
    pooled = {(p.term, p.method): p for p in pool_terms(studies, terms, _pool_function(impl))[0]}
    lines = []
    for key, ref in reference.items():
        _, method, term, quantity = key
        found = pooled.get((str(term), str(method)))
        if found is None:
            lines.append(_flat(case, key, ref, "structure"))
        elif found.error is not None or not isinstance(found.fit, Mapping):
            lines.append(_flat(case, key, ref, "unsupported" if isinstance(found.error, NotImplementedError)
                               else "error"))
        elif quantity == "k":
            k = float(len(found.studies))
            lines.append(_graded(case, key, ref, k) if k == ref else _flat(case, key, ref, "structure", k))
        elif found.fit.get(quantity) is None:
            lines.append(_flat(case, key, ref, "not_reported"))
        else:
            lines.append(_graded(case, key, ref, found.fit[quantity]))
    return lines


def _failed_case(case_dir: Path, tier: str) -> list[Line]:
    """Every line of a case that could not be scored at all, in ``tier``."""
    case = str(load_case(case_dir)["case_id"])
    statuses = json.loads((case_dir / "structure.json").read_text(encoding="utf-8"))["studies"]
    graded = numbers.read_table((case_dir / "reference.tsv").read_text(encoding="utf-8"))
    for server, recorded in statuses.items():
        graded.update(_convergence_references(server, recorded))
    return [_flat(case, k, v, tier) for k, v in graded.items()]


def suite_cases(suite: Path) -> list[Path]:
    """The case folders of a suite (in ``suite.json``'s order), or the folder itself when it is a case."""
    if (suite / "case.json").is_file():
        return [suite]
    listed = suite / "suite.json"
    if listed.is_file():
        names = json.loads(listed.read_text(encoding="utf-8"))["cases"]
        return [suite / name for name in names]
    return sorted(p.parent for p in suite.glob("*/case.json"))


def score_suite(suite: Path, impl: Impl | Server, on_case: Callable[[str], None] | None = None) -> list[Line]:
    """Every graded line of a suite (or one case folder). A server-level plug-in is stood up once with
    every study table of the suite and runs each case's call."""
    cases = suite_cases(suite)
    lines: list[Line] = []
    with contextlib.ExitStack() as stack:
        scored: Impl | RunningServer
        if isinstance(impl, PythonServer | CommandServer):
            try:
                scored = stack.enter_context(impl.running(cases))
            except Exception as exc:  # the server never came up: every number is an error, the run ends here
                print(f"pydsbase conformance: {impl.name}: the server did not start: {exc}", file=sys.stderr)
                return [line for c in cases for line in _failed_case(c, "error")]
        else:
            scored = impl
        for case_dir in cases:
            if on_case is not None:
                on_case(case_dir.name)
            lines += score_case(case_dir, scored)
    return lines


# -- reports ---------------------------------------------------------------------------------------------


def _cases(lines: Sequence[Line]) -> list[str]:
    return list(dict.fromkeys(line.case for line in lines))


def terminal_table(lines: Sequence[Line]) -> str:
    """Per case: the numbers, the coverage (numbers the implementation answered) and the tier counts."""
    width = max([len("case"), len("all"), *(len(c) for c in _cases(lines))])
    short = {"identical": "ident", "not_reported": "n/rep", "unsupported": "unsup", "structure": "struct"}
    header = f"{'case':<{width}} {'numbers':>7} {'coverage':>8} " + " ".join(f"{short.get(t, t):>6}" for t in TIERS)
    header += f" {'min LRE':>7}"
    rows = [header]
    groups = [(c, [x for x in lines if x.case == c]) for c in _cases(lines)] + [("all", list(lines))]
    for name, group in groups:
        counts = Counter(x.tier for x in group)
        answered = sum(counts[t] for t in _NUMERIC)
        coverage = answered / len(group) if group else 0.0
        lres = [x.lre for x in group if x.lre is not None]
        least = f"{min(lres):7.2f}" if lres else f"{'-':>7}"
        rows.append(f"{name:<{width}} {len(group):>7} {coverage:>8.1%} "
                    + " ".join(f"{counts[t]:>6}" for t in TIERS) + f" {least}")
    return "\n".join(rows)


def _column(line: Line) -> str:
    return line.quantity if line.study is not None else f"pooled {line.quantity}"


def html_page(lines: Sequence[Line], title: str) -> str:
    """One self-contained page (no scripts, no links): cases x quantities, each cell coloured by its
    worst tier, the tier counts in its tooltip."""
    columns = list(dict.fromkeys(_column(x) for x in lines))
    cases = _cases(lines)
    cells: dict[tuple[str, str], list[Line]] = {}
    for line in lines:
        cells.setdefault((line.case, _column(line)), []).append(line)
    out = [
        "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
        "td,th{border:1px solid #fff;padding:3px 6px;text-align:center}th{background:#eee}"
        "td.case{text-align:left;background:#f7f7f7}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Each cell: the worst tier among the case's numbers of that quantity (hover for the counts and the "
        "least LRE). Tiers: " + " ".join(
            f"<span style='background:{_COLOURS[t]};padding:2px 5px'>{t}</span>" for t in TIERS) + "</p>",
        "<table><tr><th>case</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>",
    ]
    for case in cases:
        row = [f"<tr><td class='case'>{html.escape(case)}</td>"]
        for column in columns:
            group = cells.get((case, column))
            if not group:
                row.append("<td></td>")
                continue
            worst = max((x.tier for x in group), key=_SEVERITY.__getitem__)
            counts = Counter(x.tier for x in group)
            lres = [x.lre for x in group if x.lre is not None]
            tip = ", ".join(f"{t} {counts[t]}" for t in TIERS if counts[t])
            if lres:
                tip += f"; least LRE {min(lres):.2f}"
            row.append(f"<td style='background:{_COLOURS[worst]}' title='{html.escape(tip, quote=True)}'>"
                       f"{html.escape(worst)}</td>")
        out.append("".join(row) + "</tr>")
    out.append("</table>")
    out.append("<h2>Counts</h2><pre>" + html.escape(terminal_table(lines)) + "</pre></body></html>")
    return "\n".join(out) + "\n"


def junit_xml(lines: Sequence[Line], name: str, min_tier: str = "lre6") -> str:
    """One testsuite per case, one testcase per number: a failure when the tier is worse than
    ``min_tier`` (or worse/error/structure), skipped when not reported or unsupported."""
    limit = _SEVERITY[min_tier]
    root = ElementTree.Element("testsuites", name=name)
    for case in _cases(lines):
        group = [x for x in lines if x.case == case]
        suite = ElementTree.SubElement(root, "testsuite", name=case, tests=str(len(group)))
        failed = skipped = 0
        for line in group:
            where = line.study if line.study is not None else f"pooled.{line.method}"
            test = ElementTree.SubElement(suite, "testcase", classname=f"{case}.{where}",
                                          name=f"{line.term or '-'}/{line.quantity}")
            text = (f"tier {line.tier}; reference {line.reference!r}, value {line.value!r}, "
                    f"ulp {line.ulp}, lre {line.lre}")
            if line.tier in _SKIPPED:
                skipped += 1
                ElementTree.SubElement(test, "skipped", message=line.tier)
            elif line.tier in _FAILING or _SEVERITY[line.tier] > limit:
                failed += 1
                ElementTree.SubElement(test, "failure", message=text)
        suite.set("failures", str(failed))
        suite.set("skipped", str(skipped))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def write_reports(lines: Sequence[Line], out: Path, name: str, min_tier: str = "lre6") -> dict[str, Path]:
    """``scores.jsonl``, ``junit.xml`` and ``report.html`` in ``out``; returns them by kind."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"scores": out / "scores.jsonl", "junit": out / "junit.xml", "html": out / "report.html"}
    paths["scores"].write_text("".join(json.dumps(x.as_json(), allow_nan=False) + "\n" for x in lines),
                               encoding="utf-8")
    paths["junit"].write_text(junit_xml(lines, name, min_tier), encoding="utf-8")
    paths["html"].write_text(html_page(lines, f"pydsbase conformance: {name}"), encoding="utf-8")
    return paths


def read_scores(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def tiers(lines: Iterable[Line]) -> Counter[str]:
    return Counter(x.tier for x in lines)
