"""The analyst's view of a study-level meta-analysis: ``SLMAResult``.

dsBaseClient's ``ds.lmerSLMA`` returns a bare nested list (``r_value`` here, kept unchanged): studies
are called study1..N, coefficients are matched across studies by position (the call fails when one
study drops a coefficient) and only the pooled estimate and its standard error are given.

``SLMAResult`` is a richer layer beside that value:

- studies labelled by their server names;
- coefficients aligned across studies by term name; a term is pooled over the studies that
  estimated it, and every study that did not is named with its reason;
- per term and per method (ML, REML, FE) metafor's full summary: estimate, se, z, p, 95% CI,
  tau2, se(tau2), Q, Q p-value, I2, H2, k (computed by ``pydsbase.meta.rma``, metafor's doubles);
- every excluded study or coefficient with a reason (disclosure risk, fit error, server error,
  coefficient missing or not estimable in that study);
- ``to_frame()`` (pandas), ``to_dict()``, ``to_json()``, a readable ``repr`` and an HTML repr.

Build one from what ``ds_lmer_slma`` returned with ``slma_result(value)`` (the value carries its
studies' server names and its metafor fits beside R's list), or run the model and build it directly
with ``lmer_slma_result(session, formula, ...)``, which never fails on studies whose coefficients differ.
Both use ``ds_lmer_slma``'s call text, its one fan-out through the session and the same summaries.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydsbase.lmer import SLMAValue, lmer_call_text
from pydsbase.meta import METHODS
from pydsbase.rvalue import NA, RAtomic, RList, RValue

if TYPE_CHECKING:
    import pandas as pd

    from pydsbase.pooling import PooledEstimates
    from pydsbase.session import Session

__all__ = [
    "METHODS",
    "SINGULAR_NOTE",
    "Exclusion",
    "Pooled",
    "PoolingFailure",
    "SLMAResult",
    "StudyFit",
    "TermPooling",
    "lmer_call_text",
    "lmer_slma_result",
    "pool_terms",
    "slma_result",
]

ExclusionKind = Literal["disclosure", "fit_error", "server_error", "missing_coefficient", "not_estimable"]

#: The statistics of one pooled row, in display order (attribute names of ``Pooled``).
STATISTICS: tuple[str, ...] = (
    "estimate",
    "se",
    "z",
    "p",
    "ci_lb",
    "ci_ub",
    "tau2",
    "se_tau2",
    "Q",
    "Q_p",
    "I2",
    "H2",
    "k",
)

_DISCLOSURE_PREAMBLE = ("errorMessage.1", "errorMessage.2")


@dataclass(frozen=True)
class Exclusion:
    """Why a study (``term`` None) or one coefficient of a study was left out of the pooling."""

    study: str
    term: str | None
    kind: ExclusionKind
    message: str

    def __str__(self) -> str:
        what = self.study if self.term is None else f"{self.term!r} in {self.study}"
        return f"{what}: {self.kind.replace('_', ' ')}: {self.message}"


@dataclass(frozen=True)
class StudyFit:
    """One study's answer: its coefficients by term name, or the reason it has none."""

    name: str
    estimates: dict[str, float] = field(default_factory=dict)
    std_errors: dict[str, float] = field(default_factory=dict)
    n_total: int | None = None
    n_valid: int | None = None
    n_missing: int | None = None
    convergence: tuple[str, ...] = ()
    fit_messages: tuple[str, ...] = ()
    exclusion: Exclusion | None = None
    converged: bool | None = None
    """lme4 converged: nloptwrap's code (``optinfo$conv$opt``) 0 and no lme4 convergence message
    (``optinfo$conv$lme4$messages``, i.e. ``convergence``) but the singular-fit note; None without a model."""

    @property
    def included(self) -> bool:
        return self.exclusion is None

    @property
    def terms(self) -> list[str]:
        return list(self.estimates)


@dataclass(frozen=True)
class Pooled:
    """metafor's summary of one term pooled under one method (``rma(yi, sei, method=...)``)."""

    term: str
    method: str
    studies: tuple[str, ...]
    estimate: float
    se: float
    z: float
    p: float
    ci_lb: float
    ci_ub: float
    tau2: float
    se_tau2: float
    Q: float
    Q_p: float
    I2: float
    H2: float
    k: int

    warnings: tuple[str, ...] = ()

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATISTICS}


@dataclass(frozen=True)
class PoolingFailure:
    """metafor stopped while pooling ``term`` under ``method``; ``message`` is R's condition message."""

    term: str
    method: str
    studies: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.term!r} under {self.method}: rma failed: {self.message}"


@dataclass(frozen=True)
class SLMAResult:
    """A pooled lmer analysis, per term and method, with every study and exclusion named."""

    studies: tuple[StudyFit, ...]
    terms: tuple[str, ...]
    pooled: tuple[Pooled, ...]
    exclusions: tuple[Exclusion, ...]
    failures: tuple[PoolingFailure, ...] = ()
    r_value: RList | None = None
    formula: str | None = None
    methods: tuple[str, ...] = METHODS
    #: studies whose answers came as JSON text (a stock datashield_opal session): rounded numbers
    inexact: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """True when every study answered in R's serialization (the numbers are R's, bit for bit)."""
        return not self.inexact

    # -- look-ups -----------------------------------------------------------------------------

    @property
    def study_names(self) -> list[str]:
        return [s.name for s in self.studies]

    @property
    def included_studies(self) -> list[str]:
        return [s.name for s in self.studies if s.included]

    def study(self, name: str) -> StudyFit:
        for fit in self.studies:
            if fit.name == name:
                return fit
        raise KeyError(f"no study named {name!r}; studies: {', '.join(self.study_names)}")

    def get(self, term: str, method: str = "REML") -> Pooled:
        for row in self.pooled:
            if row.term == term and row.method == method:
                return row
        if term not in self.terms:
            raise KeyError(f"no term {term!r}; terms: {', '.join(self.terms)}")
        raise KeyError(f"{term!r} was not pooled under {method} (no study estimated it)")

    def pooled_terms(self) -> list[str]:
        seen = {row.term for row in self.pooled}
        return [t for t in self.terms if t in seen]

    def exclusions_for(self, term: str) -> list[Exclusion]:
        """Every study left out of the pooling of ``term``, with its reason."""
        return [e for e in self.exclusions if e.term is None or e.term == term]

    # -- views --------------------------------------------------------------------------------

    def to_frame(self, method: str | None = None) -> pd.DataFrame:
        """The pooled table: one row per (term, method), metafor's statistics as columns."""
        import pandas as pd

        rows = [r for r in self.pooled if method is None or r.method == method]
        index = pd.MultiIndex.from_tuples([(r.term, r.method) for r in rows], names=["term", "method"])
        frame = pd.DataFrame([r.as_row() for r in rows], index=index, columns=list(STATISTICS))
        return frame.astype({"k": "int64"}) if rows else frame

    def study_frame(self) -> pd.DataFrame:
        """Per-study estimates and standard errors by term (NaN where a study has no estimate)."""
        import pandas as pd

        rows = []
        for fit in self.studies:
            for term in self.terms:
                rows.append(
                    {
                        "study": fit.name,
                        "term": term,
                        "estimate": fit.estimates.get(term, math.nan),
                        "se": fit.std_errors.get(term, math.nan),
                        "pooled": fit.included and term in fit.estimates and _finite_pair(fit, term),
                    }
                )
        return pd.DataFrame(rows, columns=["study", "term", "estimate", "se", "pooled"]).set_index(["study", "term"])

    def exclusion_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [{"study": e.study, "term": e.term, "kind": e.kind, "message": e.message} for e in self.exclusions],
            columns=["study", "term", "kind", "message"],
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (JSON-ready apart from non-finite floats, see ``to_json``)."""
        return {
            "formula": self.formula,
            "methods": list(self.methods),
            "terms": list(self.terms),
            "studies": [
                {
                    "name": s.name,
                    "included": s.included,
                    "estimates": dict(s.estimates),
                    "std_errors": dict(s.std_errors),
                    "n_total": s.n_total,
                    "n_valid": s.n_valid,
                    "n_missing": s.n_missing,
                    "convergence": list(s.convergence),
                    "fit_messages": list(s.fit_messages),
                }
                for s in self.studies
            ],
            "failures": [
                {"term": f.term, "method": f.method, "studies": list(f.studies), "message": f.message}
                for f in self.failures
            ],
            "pooled": [
                {
                    "term": r.term,
                    "method": r.method,
                    "studies": list(r.studies),
                    **r.as_row(),
                    "warnings": list(r.warnings),
                }
                for r in self.pooled
            ],
            "exclusions": [
                {"study": e.study, "term": e.term, "kind": e.kind, "message": e.message} for e in self.exclusions
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; doubles keep every bit (shortest repr); NaN is null, infinities are "Inf"/"-Inf"."""
        return json.dumps(_json_ready(self.to_dict()), indent=indent, allow_nan=False, ensure_ascii=False)

    def __repr__(self) -> str:
        return self.text()

    def text(self, method: str | None = None) -> str:
        """The readable summary (``repr``): studies, pooled table (one method or all), reasons."""
        lines = [f"SLMAResult({self.formula or 'lmer'}: {len(self.included_studies)} of {len(self.studies)} studies)"]
        for fit in self.studies:
            status = "pooled" if fit.included else f"excluded ({fit.exclusion.kind if fit.exclusion else ''})"
            n = f", n={fit.n_valid}" if fit.n_valid is not None else ""
            conv = f"; convergence: {' / '.join(fit.convergence)}" if fit.convergence else ""
            lines.append(f"  {fit.name}: {status}{n}{conv}")
        if self.pooled:
            lines.append("")
            lines.append(_text_table([r for r in self.pooled if method is None or r.method == method]))
        if self.exclusions:
            lines.append("")
            lines.append("Not pooled:")
            lines.extend(f"  {e}" for e in self.exclusions)
        notes = [f"  {f}" for f in self.failures] + [
            f"  {r.term!r} under {r.method}: {w}" for r in self.pooled for w in r.warnings
        ]
        if notes:
            lines.append("")
            lines.append("Pooling notes:")
            lines.extend(notes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [
            f"<div><strong>SLMAResult</strong> {esc(self.formula or '')} &mdash; "
            f"{len(self.included_studies)} of {len(self.studies)} studies pooled: "
            f"{esc(', '.join(self.included_studies))}</div>"
        ]
        if self.pooled:
            parts.append(self.to_frame().to_html(float_format=lambda v: f"{v:.6g}"))
        if self.exclusions:
            items = "".join(f"<li>{esc(str(e))}</li>" for e in self.exclusions)
            parts.append(f"<div>Not pooled:<ul>{items}</ul></div>")
        if self.failures:
            items = "".join(f"<li>{esc(str(f))}</li>" for f in self.failures)
            parts.append(f"<div>Pooling failed:<ul>{items}</ul></div>")
        return "\n".join(parts)

    # -- plots --------------------------------------------------------------------------------

    def forest_plot(self, term: str, **kwargs: Any) -> Any:
        """A matplotlib forest plot of one term (see ``pydsbase.plots.forest_plot``)."""
        from pydsbase.plots import forest_plot

        return forest_plot(self, term, **kwargs)


# -- building ---------------------------------------------------------------------------------------

RmaFunction = Callable[[list[float], list[float], str], Any]


def slma_result(
    value: RList,
    study_names: Sequence[str] | None = None,
    *,
    formula: str | None = None,
    methods: Sequence[str] = METHODS,
    rma: RmaFunction | None = None,
) -> SLMAResult:
    """Build the rich result from what ds_lmer_slma returned, or from its per-study summaries alone.

    ``value`` is either the full list of ``ds_lmer_slma`` (with ``output.summary``), or an
    ``output.summary``-style list (``study1``..``studyN``, as returned with
    ``combine_with_metafor=False``), or any list whose first N elements are the N study summaries.
    The full list is kept as ``r_value``.

    Studies are named by server name, in the value's order: a value ``ds_lmer_slma`` returned (an
    :class:`~pydsbase.lmer.SLMAValue`) carries them, so ``study_names`` is not needed; given anyway,
    they must be exactly those names in that order (``ValueError`` otherwise, never a silent
    relabelling). Any other list needs ``study_names``. The studies ``on_study_failure="exclude"``
    dropped are listed as excluded with their error. Where a term is pooled over exactly the inputs
    ds_lmer_slma pooled, its metafor fits are reused, not recomputed (unless ``rma`` is given).
    """
    names = _study_names(value, study_names)
    summaries = study_summaries(value, len(names))
    fits = [study_fit(name, summary) for name, summary in zip(names, summaries, strict=True)]
    fits += [study_fit(name, RuntimeError(message)) for name, message in _failed_studies(value).items()
             if name not in names]
    if rma is None:
        rma = _metafor_rma(value.pooling if isinstance(value, SLMAValue) else None)
    return pool(fits, r_value=value, formula=formula, methods=methods, rma=rma)


def _study_names(value: RList, given: Sequence[str] | None) -> list[str]:
    """The server names of the value's studies: those that travelled with it, checked against ``given``."""
    travelled: list[str] | None = None
    if isinstance(value, SLMAValue):
        travelled = list(value.servers)
    else:
        survivors = value.attributes.get("datasources") if isinstance(value, RList) else None
        if isinstance(survivors, RAtomic):  # a value whose SLMAValue wrapper was lost (e.g. read back from JSON)
            travelled = [str(name) for name in survivors.data]
    if given is None:
        if travelled is None:
            raise ValueError("study_names are needed: the value does not name its studies")
        return travelled
    names = [given] if isinstance(given, str) else list(given)
    if travelled is not None and names != travelled:
        raise ValueError(f"study_names {names} do not match the studies this value came from, "
                         f"in its order: {travelled}; leave study_names out to use those")
    return names


def _failed_studies(value: RList) -> dict[str, str]:
    if isinstance(value, SLMAValue):
        return dict(value.failed)
    failed = value.attributes.get("failed.studies") if isinstance(value, RList) else None
    if isinstance(failed, RAtomic) and failed.names:
        return {str(name): str(message) for name, message in zip(failed.names, failed.data, strict=True)}
    return {}


def study_summaries(value: RList, n_studies: int) -> list[RValue | None]:
    """The N per-study summaries inside a ds_lmer_slma value (full or output.summary-style)."""
    if not isinstance(value, RList):
        raise TypeError(f"expected the R list ds_lmer_slma returned, got {type(value).__name__}")
    inner = value.get("output.summary")
    source = inner if isinstance(inner, RList) else value
    if source.names is not None and any(n.startswith("study") for n in source.names):
        held = sum(1 for n in source.names if n.startswith("study") and n[5:].isdigit())
        if held != n_studies:
            raise ValueError(f"the value holds {held} study summaries, not the {n_studies} studies named")
        return [source[f"study{i + 1}"] for i in range(n_studies)]
    if len(source) < n_studies:
        raise ValueError(f"the value has {len(source)} elements, fewer than the {n_studies} studies named")
    return list(source.data[:n_studies])


def study_fit(name: str, summary: RValue | Exception | None) -> StudyFit:
    """One study's coefficients by term, or its exclusion with the reason, from its lmerSLMADS2 answer.

    ``summary`` may also be the exception the study's call raised (a server error).
    """
    if isinstance(summary, Exception):
        return StudyFit(name, exclusion=Exclusion(name, None, "server_error", str(summary) or type(summary).__name__))
    if not isinstance(summary, RList):
        return StudyFit(name, exclusion=Exclusion(name, None, "server_error", "the study returned no model summary"))
    counts = {key: _int_or_none(summary.get(key)) for key in ("Ntotal", "Nvalid", "Nmissing")}
    base: dict[str, Any] = {"n_total": counts["Ntotal"], "n_valid": counts["Nvalid"], "n_missing": counts["Nmissing"]}
    risk = _scalar(summary.get("disclosure.risk"))
    coefficients = summary.get("coefficients")
    if risk == 0 and isinstance(coefficients, RAtomic):
        estimates, std_errors = _coefficient_columns(coefficients)
        return StudyFit(
            name,
            estimates=estimates,
            std_errors=std_errors,
            convergence=tuple(_convergence_messages(summary)),
            fit_messages=tuple(_strings(summary.get("fitMsgs"))),
            converged=_lme4_converged(summary),
            **base,
        )
    disclosure = _disclosure_messages(summary)
    if disclosure is not None:
        return StudyFit(name, exclusion=Exclusion(name, None, "disclosure", disclosure), **base)
    message = "; ".join(_strings(summary.get("errorMessage"))) or "the model could not be fitted"
    if risk == 0:
        message = "the study's summary has no coefficient table"
    return StudyFit(name, exclusion=Exclusion(name, None, "fit_error", message), **base)


def pool(
    fits: Sequence[StudyFit],
    *,
    r_value: RList | None = None,
    formula: str | None = None,
    methods: Sequence[str] = METHODS,
    rma: RmaFunction | None = None,
    inexact: Sequence[str] | None = None,
) -> SLMAResult:
    """Align the studies' coefficients by term name and pool each term under each method.

    ``inexact``: the studies whose answers came as JSON text (by default those ``r_value`` names)."""
    if inexact is None:
        inexact = r_value.inexact if isinstance(r_value, SLMAValue) else ()
    names = [f.name for f in fits]
    if len(set(names)) != len(names):
        raise ValueError(f"study names must be unique: {names}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown pooling methods {unknown}; choose from {list(METHODS)}")
    if rma is None:
        rma = _metafor_rma()
    included = [f for f in fits if f.included]
    terms = aligned_terms([f.terms for f in included])
    exclusions: list[Exclusion] = [f.exclusion for f in fits if f.exclusion is not None]
    pooled: list[Pooled] = []
    failures: list[PoolingFailure] = []
    outcomes, skipped = pool_terms(included, terms, rma, methods)
    exclusions += skipped
    for outcome in outcomes:
        if outcome.error is not None:  # metafor stops (e.g. Fisher scoring did not converge): say so, go on
            failures.append(PoolingFailure(outcome.term, outcome.method, outcome.studies, str(outcome.error)))
        else:
            pooled.append(_pooled_row(outcome.term, outcome.method, outcome.studies, outcome.fit))
    return SLMAResult(
        studies=tuple(fits),
        terms=tuple(terms),
        pooled=tuple(pooled),
        exclusions=tuple(exclusions),
        failures=tuple(failures),
        r_value=r_value,
        formula=formula,
        methods=tuple(methods),
        inexact=tuple(inexact),
    )


@dataclass(frozen=True)
class TermPooling:
    """One term pooled under one method: the studies used, and what ``rma`` returned or raised."""

    term: str
    method: str
    studies: tuple[str, ...]
    fit: Any = None
    error: Exception | None = None


def pool_terms(
    fits: Sequence[StudyFit],
    terms: Sequence[str],
    rma: RmaFunction,
    methods: Sequence[str] = METHODS,
) -> tuple[list[TermPooling], list[Exclusion]]:
    """The one pooling loop: each term under each method, over the ``fits`` (in their order) that
    estimated it with a finite estimate and a positive finite SE.

    Returns the poolings (term by term, methods in order; an ``rma`` that raises is kept with its
    exception, never raised) and the exclusions of the studies a term was not pooled over. A term no
    study can give is not pooled at all. ``SLMAResult`` (:func:`pool`) and the conformance kit both
    pool through here.
    """
    outcomes: list[TermPooling] = []
    exclusions: list[Exclusion] = []
    for term in terms:
        used: list[StudyFit] = []
        for fit in fits:
            if term not in fit.estimates:
                exclusions.append(Exclusion(fit.name, term, "missing_coefficient", _missing_reason(fit, term)))
            elif not _finite_pair(fit, term):
                exclusions.append(
                    Exclusion(
                        fit.name,
                        term,
                        "not_estimable",
                        f"estimate {fit.estimates[term]!r} with standard error {fit.std_errors[term]!r}",
                    )
                )
            else:
                used.append(fit)
        if not used:
            continue
        yi = [f.estimates[term] for f in used]
        sei = [f.std_errors[term] for f in used]
        studies = tuple(f.name for f in used)
        for method in methods:
            try:
                outcomes.append(TermPooling(term, method, studies, rma(list(yi), list(sei), method)))
            except Exception as exc:  # rma stops, or a plug-in's pool fails: kept for the caller
                outcomes.append(TermPooling(term, method, studies, None, exc))
    return outcomes, exclusions


def aligned_terms(term_lists: Sequence[Sequence[str]]) -> list[str]:
    """All terms, each once, in model order: a term a study lacks keeps its place after its predecessor."""
    merged: list[str] = []
    for terms in term_lists:
        previous: str | None = None
        for term in terms:
            if term not in merged:
                at = merged.index(previous) + 1 if previous is not None else 0
                while at < len(merged) and previous is not None and merged[at] not in terms:
                    at += 1  # keep terms only other studies have before this study's next term
                merged.insert(at, term)
            previous = term
    return merged


def lmer_slma_result(
    session: Session,
    formula: str,
    offset: str | None = None,
    weights: str | None = None,
    data_name: str | None = None,
    reml: bool = True,
    control_type: str | None = None,
    control_value: str | float | None = None,
    optimizer: str | None = None,
    verbose: float = 0,
    datasources: Sequence[str] | None = None,
    progress: bool = False,
    methods: Sequence[str] = METHODS,
) -> SLMAResult:
    """Fit the lmer model in every study (as ``ds_lmer_slma`` does) and pool it by term name.

    One server call per study: ``lmerSLMADS2`` with exactly the text ds_lmer_slma sends. A study
    whose call fails, whose fit fails or that is refused for disclosure risk is named with its
    reason; a coefficient some studies lack is pooled over the others. Never fails on differing
    coefficients. ``r_value`` is what ``ds_lmer_slma(..., combine_with_metafor=False)`` returns
    (the ``output.summary`` list) when dsBaseClient could build it, else None (a study's call failed,
    or the studies' coefficient counts differ, where dsBaseClient stops). ``progress`` shows a
    per-study bar (tqdm, on stderr).
    """
    from pydsbase import dsi, lmer, rjson
    from pydsbase.errors import InexactResultWarning
    from pydsbase.progress import session_progress
    from pydsbase.session import selected_names

    if control_type is not None and control_value is None:
        raise ValueError("control_type needs a control_value (e.g. control_value=1e-7)")
    if optimizer is not None and optimizer != "nloptwrap":
        raise ValueError("the only optimizer available for lmer is 'nloptwrap'")
    expr = lmer_call_text(formula, offset, weights, data_name, reml, control_type, control_value, optimizer, verbose)
    names = selected_names([c.get_name() for c in session.conns or []], datasources)
    with session_progress(session, names, progress):
        answers, errors = dsi.aggregate_by_study(session, expr, names)
    if answers.inexact:
        warnings.warn(InexactResultWarning(rjson.inexact_message(answers.inexact)), stacklevel=2)
    fits = [study_fit(name, errors[name] if name in errors else answers.get(name)) for name in names]
    r_value: RList | None = None
    if not errors:
        try:
            summary, _ = lmer._combine([answers.get(name) for name in names], False, False)
        except Exception:  # dsBaseClient stops here (studies' coefficient counts differ): no R value
            summary = None
        if summary is not None:  # the server names travel beside it, as with ds_lmer_slma's value
            r_value = SLMAValue(summary.data, summary.names, summary.r_class, summary.attributes, servers=tuple(names),
                                inexact=answers.inexact)
    return pool(fits, r_value=r_value, formula=formula, methods=methods, inexact=answers.inexact)


# -- helpers ----------------------------------------------------------------------------------------


def _metafor_rma(done: PooledEstimates | None = None) -> RmaFunction:
    """pydsbase.meta's rma; metafor's warnings are kept on the row instead of being signalled.

    A fit ``done`` already holds for exactly these inputs (ds_lmer_slma's) is reused, not recomputed.
    """
    from pydsbase.meta import MetaAnalysisError, rma_rows

    def call(yi: list[float], sei: list[float], method: str) -> Any:
        found = done.outcome(yi, sei, method) if done is not None else None
        (outcome,) = [found] if found is not None else rma_rows([yi], [sei], method)
        if outcome.error is not None:
            raise MetaAnalysisError(outcome.error)
        assert outcome.result is not None
        return dataclasses.replace(outcome.result, warnings=tuple(outcome.warnings))

    return call


def _pooled_row(term: str, method: str, studies: tuple[str, ...], fit: Any) -> Pooled:
    return Pooled(
        term=term,
        method=method,
        studies=studies,
        estimate=_float(fit.beta),
        se=_float(fit.se),
        z=_float(fit.zval),
        p=_float(fit.pval),
        ci_lb=_float(fit.ci_lb),
        ci_ub=_float(fit.ci_ub),
        tau2=_float(fit.tau2),
        se_tau2=_float(fit.se_tau2),
        Q=_float(fit.QE),
        Q_p=_float(fit.QEp),
        I2=_float(fit.I2),
        H2=_float(fit.H2),
        k=int(fit.k),
        warnings=tuple(str(w) for w in getattr(fit, "warnings", ()) or ()),
    )


def _float(value: Any) -> float:
    """A Python float, bit for bit (a length-1 array or R-style NA/None becomes its double or NaN)."""
    if value is None or value is NA:
        return math.nan
    if hasattr(value, "shape") and getattr(value, "size", 1) == 1:
        value = value.reshape(-1)[0]
    elif isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    return float(value)


def _finite_pair(fit: StudyFit, term: str) -> bool:
    est, se = fit.estimates.get(term), fit.std_errors.get(term)
    return est is not None and se is not None and math.isfinite(est) and math.isfinite(se) and se > 0


def _missing_reason(fit: StudyFit, term: str) -> str:
    dropped = [m for m in fit.fit_messages if "rank deficient" in m or "dropping" in m]
    detail = f" (lme4: {'; '.join(dropped)})" if dropped else " (the term is not in this study's fitted model)"
    return f"{fit.name} has no coefficient {term!r}{detail}"


def _coefficient_columns(matrix: RAtomic) -> tuple[dict[str, float], dict[str, float]]:
    if matrix.dim is None or len(matrix.dim) != 2 or matrix.dim[1] < 2:
        raise ValueError("a study's coefficients must be a matrix with Estimate and Std. Error columns")
    nrow = matrix.dim[0]
    rows = matrix.dimnames[0] if matrix.dimnames and matrix.dimnames[0] is not None else None
    terms = [str(t) for t in rows] if rows is not None else [f"coefficient {i + 1}" for i in range(nrow)]
    estimates = {t: _double(matrix.data[i]) for i, t in enumerate(terms)}
    std_errors = {t: _double(matrix.data[nrow + i]) for i, t in enumerate(terms)}
    return estimates, std_errors


def _double(value: Any) -> float:
    return math.nan if value is NA else float(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, RAtomic) and len(value.data) == 1:
        item = value.data[0]
        return None if item is NA else item
    return None


def _int_or_none(value: Any) -> int | None:
    item = _scalar(value)
    return None if item is None else int(item)


def _strings(value: Any) -> list[str]:
    if isinstance(value, RAtomic) and value.type == "character":
        return [str(v) for v in value.data if v is not NA]
    return []


def _convergence_messages(summary: RList) -> list[str]:
    node: Any = summary
    for key in ("optinfo", "conv", "lme4", "messages"):
        node = node.get(key) if isinstance(node, RList) else None
    return _strings(node)


SINGULAR_NOTE = "boundary (singular) fit: see help('isSingular')"
"""lme4's note on a boundary fit: among its convergence messages, but not a failure to converge."""


def _lme4_converged(summary: RList) -> bool:
    optinfo = summary.get("optinfo")
    conv = optinfo.get("conv") if isinstance(optinfo, RList) else None
    code = _scalar(conv.get("opt")) if isinstance(conv, RList) else None
    failures = [m for m in _convergence_messages(summary) if m != SINGULAR_NOTE]
    return (code is None or code == 0) and not failures


def _disclosure_messages(summary: RList) -> str | None:
    """The causes a study gives for refusing on disclosure grounds (its errorMessage.* sub-lists)."""
    found: list[tuple[str, str]] = []
    for item in summary.data:
        if isinstance(item, RList):
            for key, value in item.items():
                if key.startswith("errorMessage"):
                    found.extend((key, text) for text in _strings(value))
    if not found:
        return None
    causes = [text for key, text in found if key not in _DISCLOSURE_PREAMBLE]
    return "; ".join(causes or [text for _, text in found])


def _text_table(rows: Sequence[Pooled]) -> str:
    """The pooled estimates as a fixed-width table (6 significant digits; the frame has every bit)."""
    width = max([len("term"), *(len(r.term) for r in rows)])
    columns = ("estimate", "se", "ci_lb", "ci_ub", "p", "tau2", "I2", "k")
    header = f"{'term':<{width}}  {'method':<6}" + "".join(f" {c:>12}" for c in columns)
    lines = [header]
    for r in rows:
        cells = "".join(f" {getattr(r, c):>12.6g}" if c != "k" else f" {r.k:>12d}" for c in columns)
        lines.append(f"{r.term:<{width}}  {r.method:<6}{cells}")
    return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return value
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value
