"""``ds_lmer_slma``: dsBaseClient 6.3.0's ``ds.lmerSLMA`` in Python, call for call and quirk for quirk.

The same server calls (texts identical to what DSI sends), the same return values in the lossless
R-value model (``.to_pandas()`` gives views), the same ``cat`` output on ``sys.stdout``, the same
R errors (:class:`pydsbase.errors.RError`, message and class as R's ``stop``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydsbase import console, dsi, rjson, rops
from pydsbase.errors import DataSHIELDErrors, InexactResultWarning, MetaAnalysisError, RError
from pydsbase.formula import checks_terms, encoded_formula_text, normalized_text
from pydsbase.pooling import POOLED_COLUMNS, PooledEstimates, pool_slma
from pydsbase.progress import session_progress
from pydsbase.rtext import as_character_double, cat_text, deparse_call, unlist
from pydsbase.rvalue import NA, RAtomic, RList, RValue, r_character, r_double

__all__ = ["POOLED_COLUMNS", "SLMAValue", "ds_lmer_slma", "glm_checks", "is_defined", "lmer_call_text"]

_T = TypeVar("_T")
_OPTIMIZER_ERROR = "ERROR: the only optimizer currently available for lmer is 'nloptwrap', please respecify"
_CONTROL_ERROR = (
    "ERROR: if control_type is non-null, you must specify a valid control_value eg control_value<-1.0e-7"
)


def ds_lmer_slma(
    session: Any,
    formula: str | None = None,
    offset: str | None = None,
    weights: str | None = None,
    combine_with_metafor: bool = True,
    data_name: str | None = None,
    checks: bool = False,
    reml: bool = True,
    control_type: str | None = None,
    control_value: str | float | None = None,
    optimizer: str | None = None,
    verbose: float = 0,
    notify_of_progress: bool = False,
    assign: bool = False,
    newobj: str | None = None,
    datasources: Sequence[str] | None = None,
    on_study_failure: Literal["raise", "exclude"] = "raise",
    progress: bool = False,
) -> SLMAValue:
    """Fit ``lme4::lmer`` in every study and pool each coefficient (metafor ML, REML, FE).

    Returns the 8-element list of ds.lmerSLMA (``output.summary``, ``num.valid.studies``,
    ``betamatrix.all``, ``sematrix.all``, ``betamatrix.valid``, ``sematrix.valid``,
    ``SLMA.pooled.ests.matrix``, ``Convergence.error.message``); the ``output.summary`` list when
    ``combine_with_metafor`` is False or no study is valid; ``list(errorMessage=...)`` for the
    argument errors ds.lmerSLMA returns rather than raises.

    ``on_study_failure``: when a study fails a call (its server is gone, times out, or R fails
    there), ``"raise"`` (the default) raises as dsBaseClient does (``DataSHIELDErrors`` naming every
    failed study). ``"exclude"`` goes on with the other studies and returns exactly what
    ``datasources=<the surviving studies>`` would return (so ``study1``... number the survivors),
    with two attributes outside the R-compatible list: ``failed.studies`` (character, named by
    study: each failed study's error; empty when none failed) and ``datasources`` (the surviving
    studies, in order). Answers the survivors already gave are used as they are, not asked again.
    It raises when every study failed; argument errors (a missing ``data_name``...) always raise.

    ``progress``: a per-study progress bar (tqdm, on stderr) while the studies fit, with a
    ``pydsbase.Session``; the R-compatible ``notify_of_progress`` text on stdout is unchanged.

    The value is an :class:`SLMAValue`: R's list, bit for bit, carrying beside it (not inside) the
    server name of each ``studyN`` and the metafor fits behind the pooled matrix, so that
    ``pydsbase.slma_result(value)`` names the studies and reuses the fits.
    """
    if on_study_failure not in ("raise", "exclude"):
        raise ValueError(f"on_study_failure is 'raise' or 'exclude', not {on_study_failure!r}")
    federation = _Federation(session, dsi.datasource_names(session, datasources), on_study_failure == "exclude")
    federation.progress = progress
    result, pooling = _lmer_slma(
        federation, formula, offset, weights, combine_with_metafor, data_name, checks, reml, control_type,
        control_value, optimizer, verbose, notify_of_progress, assign, newobj,
    )
    failed = federation.failed
    if federation.exclude:
        result.attributes["failed.studies"] = r_character(list(failed.values()), names=list(failed))
        result.attributes["datasources"] = r_character(federation.names)
    inexact = tuple(name for name in federation.names if name in federation.inexact)
    if inexact:
        warnings.warn(InexactResultWarning(rjson.inexact_message(inexact)), stacklevel=2)
    return SLMAValue(result.data, result.names, result.r_class, result.attributes,
                     servers=tuple(federation.names), failed=dict(failed), pooling=pooling, inexact=inexact)


@dataclass(eq=False)
class SLMAValue(RList):
    """What ``ds_lmer_slma`` returns: dsBaseClient's list, bit for bit (studies are ``study1..N``, as in R).

    What R's value cannot say travels beside it, never inside it (``==``, ``to_node`` and ``dumps``
    see only the R list):

    - ``servers``: the server name of ``study1``..``studyN``, in order (the session's login order, or
      the ``datasources`` given; under ``on_study_failure="exclude"`` the studies that answered);
    - ``failed``: the studies ``on_study_failure="exclude"`` dropped, each with its error message;
    - ``pooling``: the metafor fits behind ``SLMA.pooled.ests.matrix`` (None when nothing was pooled);
    - ``inexact``: the studies whose answers came as JSON text (a stock ``datashield_opal`` session),
      with numbers rounded (:data:`pydsbase.rjson.JSON_LOSS`); ``exact`` is False when there are any.
    """

    servers: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    pooling: PooledEstimates | None = None
    inexact: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """True when every study answered in R's serialization (R's value, bit for bit)."""
        return not self.inexact


class _Federation:
    """The studies a call still goes to; with ``exclude``, a study that fails a call is dropped and named."""

    def __init__(self, session: Any, names: list[str], exclude: bool) -> None:
        self.session = session
        self.names = names
        self.exclude = exclude
        self.failed: dict[str, str] = {}
        self.inexact: set[str] = set()  # studies that answered some call in JSON (rounded numbers)
        self.progress = False

    def _drop(self, exc: DataSHIELDErrors) -> None:
        """Record the failed studies of ``exc``; re-raise it when it names none of ours or leaves none."""
        gone = [name for name in self.names if name in exc.datashield_errors]
        if not self.exclude or not gone or len(gone) == len(self.names):
            raise exc
        for name in gone:
            self.failed[name] = "; ".join(exc.datashield_errors[name])
        self.names = [name for name in self.names if name not in gone]

    def run(self, call: Callable[[list[str]], _T]) -> _T:
        """``call(names)``, again on the survivors after each study failure (at most once per study)."""
        for _ in range(len(self.names)):
            try:
                return call(list(self.names))
            except DataSHIELDErrors as exc:
                self._drop(exc)
        return call(list(self.names))

    def aggregate(self, expr: str) -> dict[str, RValue | None]:
        """One aggregate call to the studies: every answer keyed by server name, in the studies' order.

        After failures (with ``exclude``), the survivors' answers as they came back; a survivor whose
        answer the session dropped is asked again.
        """
        with session_progress(self.session, self.names, self.progress):
            answers, errors = dsi.aggregate_by_study(self.session, expr, self.names)
        self.inexact.update(answers.inexact)
        if errors:
            self._drop(DataSHIELDErrors({name: [str(err)] for name, err in errors.items()}))
            if any(name not in answers for name in self.names):
                answers = self.run(lambda names: dsi.aggregate_answers(self.session, expr, names))
                self.inexact.update(answers.inexact)
        return {name: answers.get(name) for name in self.names}


def _lmer_slma(
    federation: _Federation,
    formula: str | None,
    offset: str | None,
    weights: str | None,
    combine_with_metafor: bool,
    data_name: str | None,
    checks: bool,
    reml: bool,
    control_type: str | None,
    control_value: str | float | None,
    optimizer: str | None,
    verbose: float,
    notify_of_progress: bool,
    assign: bool,
    newobj: str | None,
) -> tuple[RList, PooledEstimates | None]:
    session = federation.session
    if formula is None:
        raise RError(" Please provide a valid regression formula!")
    if re.search("offset", formula, re.IGNORECASE) or re.search("weights", formula, re.IGNORECASE):
        console.cat(
            "\n\n WARNING: you may have specified an offset or regression weights"
            "\n as part of the model formula. In ds.glm (unlike the usual glm in R)"
            "\n you must specify an offset or weights separately from the formula"
            "\n using the offset or weights argument.\n\n"
        )
    normalized_text(formula)  # stats::as.formula: R's parse errors
    if data_name is not None:
        federation.run(lambda names: is_defined(session, names, data_name))
    if checks:
        console.message(" -- Verifying the variables in the model")
        federation.run(lambda names: glm_checks(session, names, formula, data_name, offset, weights))
    encoded = encoded_formula_text(formula)

    if control_type is not None and control_value is None:
        return RList([r_character([_CONTROL_ERROR])], names=["errorMessage"]), None
    if optimizer is not None and optimizer != "nloptwrap":
        console.cat(cat_text("\n", _OPTIMIZER_ERROR, "\n"))
        return RList([r_character([_OPTIMIZER_ERROR])], names=["errorMessage"]), None

    args = _call_args(encoded, offset, weights, data_name, reml, control_type, control_value, optimizer, verbose)
    if assign:
        newobj = "new.lmer.obj" if newobj is None else newobj
        if notify_of_progress:
            console.cat(cat_text("\n\nSAVING SERVERSIDE lmerMod OBJECT AS: <", newobj, ">\n\n"))
        assign_expr = deparse_call("lmerSLMADS.assign", *args, raw=(0,))
        federation.run(lambda names: dsi.assign(session, newobj, assign_expr, names))
    summaries = federation.aggregate(deparse_call("lmerSLMADS2", *args, raw=(0,)))
    return _combine(list(summaries.values()), combine_with_metafor, notify_of_progress)


def _call_args(
    encoded: str,
    offset: str | None,
    weights: str | None,
    data_name: str | None,
    reml: bool,
    control_type: str | None,
    control_value: str | float | None,
    optimizer: str | None,
    verbose: float,
) -> tuple[Any, ...]:
    """The arguments of ``lmerSLMADS2``/``lmerSLMADS.assign``, as ds.lmerSLMA transmits them."""
    return (encoded, offset, weights, data_name, reml, control_type, control_value_text(control_value),
            optimizer, verbose)


def lmer_call_text(
    formula: str,
    offset: str | None = None,
    weights: str | None = None,
    data_name: str | None = None,
    reml: bool = True,
    control_type: str | None = None,
    control_value: str | float | None = None,
    optimizer: str | None = None,
    verbose: float = 0,
) -> str:
    """The ``lmerSLMADS2(...)`` call text ds_lmer_slma sends for these arguments."""
    args = _call_args(encoded_formula_text(formula), offset, weights, data_name, reml, control_type,
                      control_value, optimizer, verbose)
    return deparse_call("lmerSLMADS2", *args, raw=(0,))


def control_value_text(value: Any) -> str | None:
    """``control_value`` as ds.lmerSLMA sends it: through R's as.character (15 significant digits)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return as_character_double(float(value))


def _combine(summaries: list[RValue | None], combine: bool, notify: bool) -> tuple[RList, PooledEstimates | None]:
    """ds.lmerSLMA's value from the studies' summaries (in order), and the metafor fits behind it."""
    numstudies = len(summaries)
    valid: list[int] = []
    with_errors: list[int] = []
    for j, summary in enumerate(summaries):
        risk = rops.dollar(summary, "disclosure.risk")
        (valid if rops.condition(rops.equals_scalar(risk, 0)) else with_errors).append(j)
    if notify:
        _report_progress(summaries, with_errors)

    numcoefficients = 0
    for g in valid:
        numcoefficients = max(numcoefficients, rops.nrow(rops.dollar(summaries[g], "coefficients")))
    coefficients = {k: rops.dollar(summaries[k], "coefficients") for k in valid}
    betamatrix = rops.new_matrix(numcoefficients, numstudies, {k: rops.column(c, 0) for k, c in coefficients.items()})
    sematrix = rops.new_matrix(numcoefficients, numstudies, {k: rops.column(c, 1) for k, c in coefficients.items()})
    first_terms = rops.rownames(rops.dollar(summaries[0], "coefficients")) if summaries else None
    rops.matrix_dimnames(betamatrix, first_terms, [f"betas study {v + 1}" for v in range(numstudies)])
    rops.matrix_dimnames(sematrix, first_terms, [f"ses study {v + 1}" for v in range(numstudies)])

    output_summary = RList(
        [*summaries, betamatrix, sematrix],
        names=[*(f"study{u + 1}" for u in range(numstudies)), "input.beta.matrix.for.SLMA", "input.se.matrix.for.SLMA"],
    )
    if not combine or not valid:
        return output_summary, None

    usecols = [ut for ut in range(numstudies) if rops.row(betamatrix, 0)[ut] is not NA]
    betamatrix_valid = rops.select_columns(betamatrix, usecols)
    sematrix_valid = rops.select_columns(sematrix, usecols)
    beta_rows = rops.as_matrix(betamatrix_valid)
    se_rows = rops.as_matrix(sematrix_valid)
    num_valid_studies = float(beta_rows.dim[1]) if beta_rows.dim else 0.0
    # ds.lmerSLMA's "Models in different sources vary in structure" branch compares the lengths of
    # the columns of one matrix, which are always equal: it can never be taken.

    pooled, pooling = _pool(
        [rops.row(beta_rows, p) for p in range(numcoefficients)],
        [rops.row(se_rows, p) for p in range(numcoefficients)],
    )
    slma = RAtomic("double", [pooled[p][c] for c in range(6) for p in range(numcoefficients)], dim=[numcoefficients, 6])
    rops.matrix_dimnames(slma, rops.rownames(betamatrix_valid), list(POOLED_COLUMNS))

    messages = [_convergence_message(q, summary) for q, summary in enumerate(summaries)]
    if notify:
        console.cat("Convergence information\n")
        for text in messages:
            console.cat(cat_text(text, "\n"))
    return RList(
        [
            output_summary,
            r_double([num_valid_studies]),
            betamatrix,
            sematrix,
            betamatrix_valid,
            sematrix_valid,
            slma,
            r_character(messages),
        ],
        names=[
            "output.summary",
            "num.valid.studies",
            "betamatrix.all",
            "sematrix.all",
            "betamatrix.valid",
            "sematrix.valid",
            "SLMA.pooled.ests.matrix",
            "Convergence.error.message",
        ],
    ), pooling


def _report_progress(summaries: list[RValue | None], with_errors: list[int]) -> None:
    if with_errors:
        for sse in with_errors:
            summary = summaries[sse]
            items = summary.data if isinstance(summary, RList) else []
            console.cat(cat_text("\n", "Error report from second serverside function for study", float(sse + 1), "\n"))
            console.cat(cat_text("############################################################", "\n"))
            console.cat(cat_text(unlist(_element(items, 0)), "\n"))
            console.cat(cat_text(unlist(_element(items, 1)), "\n\n"))
            num_messages = len(items) - 2
            # for (m in 1:num.messages): R's 1:0 is c(1, 0)
            steps = range(1, num_messages + 1) if num_messages >= 1 else range(1, num_messages - 1, -1)
            for m in steps:
                flat = unlist(_element(items, 1 + m))
                if flat is not None:
                    console.cat(cat_text(flat, "\n\n"))
    else:
        console.cat("\nAll studies passed disclosure tests\n")
        console.cat("Please check for convergence warnings in the study summaries\n\n\n")


def _element(items: list[RValue | None], index: int) -> RValue | None:
    """``x[[index + 1]]`` with R's error past the end."""
    if index < 0 or index >= len(items):
        raise RError("subscript out of bounds")
    return items[index]


def _convergence_message(q: int, summary: RValue | None) -> str:
    messages = summary
    for name in ("optinfo", "conv", "lme4", "messages"):
        messages = rops.dollar(messages, name)
    if messages is None:
        return f"Study{q + 1}: no convergence error reported"
    flat = unlist(messages)
    texts = [] if flat is None else [_as_text(flat.type, v) for v in flat.data]
    if not texts:
        return f"Study{q + 1}: "
    if len(texts) > 1:
        console.warning("number of items to replace is not a multiple of replacement length")
    return f"Study{q + 1}: {texts[0]}"


def _as_text(rtype: str, value: Any) -> str:
    if value is NA:
        return "NA"
    if rtype == "double":
        return as_character_double(value)
    if rtype == "logical":
        return "TRUE" if value else "FALSE"
    return str(value)


def _pool(betas: list[list[Any]], ses: list[list[Any]]) -> tuple[list[list[float]], PooledEstimates]:
    """For each coefficient p: ML, se ML, REML, se REML, FE, se FE of metafor::rma on row p; and the fits.

    metafor's warnings become R warnings (in R's order); its errors become :class:`RError`.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimates = pool_slma(None, betas, ses)
        except MetaAnalysisError as exc:
            _forward(caught)
            raise RError(str(exc)) from exc
    _forward(caught)
    matrix = estimates.matrix
    rows = len(betas)
    return [[matrix.data[c * rows + p] for c in range(6)] for p in range(rows)], estimates


def _forward(caught: list[warnings.WarningMessage]) -> None:
    for item in caught:
        console.warning(str(item.message))


# -- dsBaseClient's helper checks ----------------------------------------------------------------


def is_defined(session: Any, names: Sequence[str], obj: str) -> list[RValue | None]:
    """dsBaseClient's ``isDefined``: ``exists`` in every study, stop naming the studies without it."""
    holder, element = _extract(obj)
    if holder is None:
        expr = deparse_call("exists", element)
    else:
        expr = deparse_call("exists", element, holder, raw=(1,))
    out = dsi.aggregate(session, expr, names)
    missing = [name for name, value in zip(names, out, strict=True) if _is_false(value)]
    if missing:
        raise RError(f"The input object {obj} is not defined in {', '.join(missing)}!")
    return out


def _extract(obj: str) -> tuple[str | None, str]:
    """dsBaseClient's ``extract``: ``"X$y"`` -> ("X", "y"); ``"y"`` -> (None, "y")."""
    parts = re.split(r"\$", obj)
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) > 1:
        return parts[0], parts[1]
    return None, parts[0] if parts else ""


def _is_false(value: RValue | None) -> bool:
    return isinstance(value, RAtomic) and any(v is not NA and not v for v in value.data)


_R_NUMBER = re.compile(r"^\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+|Inf|inf|NaN)\s*$")


def _is_number_text(text: str) -> bool:
    """``!is.na(as.numeric(text))``, warning like R when the coercion fails."""
    if text.strip() == "NA":
        return False
    if _R_NUMBER.match(text) and text.strip() not in ("NaN",):
        return True
    if not _R_NUMBER.match(text):
        console.warning("NAs introduced by coercion")
    return False


def _check_class(session: Any, names: Sequence[str], obj: str) -> list[str]:
    """dsBaseClient's ``checkClass``: the classes of ``obj``, which must agree across studies."""
    classes_by = dsi.aggregate(session, deparse_call("classDS", obj), names)
    classes: list[str] = []
    for value in classes_by:
        flat = unlist(value)
        for item in flat.data if flat is not None else []:
            if item not in classes:
                classes.append(item)
    for value in classes_by:
        flat = unlist(value)
        theirs = flat.data if flat is not None else []
        span = range(max(len(classes), len(theirs))) if theirs and classes else range(0)
        if any(classes[i % len(classes)] != theirs[i % len(theirs)] for i in span):
            console.message("The input data is not of the same class in all studies!")
            console.message("Use the function 'ds.class' to verify the class of the input object in each study.")
            raise RError(" End of process!")
    return classes


def glm_checks(
    session: Any, names: Sequence[str], formula: str, data: str | None, offset: str | None, weights: str | None
) -> None:
    """dsBaseClient's ``glmChecks`` (checks = TRUE), faithfully, including its quirks."""
    elts = checks_terms(formula)
    roles = ["lpVar"] * len(elts)
    if offset is not None:
        elts.append(offset)
        roles.append("offset")
    if weights is not None:
        elts.append(weights)
        roles.append("weights")
    call0: str | None = None
    call1: str | None = None
    classes: list[str] | None = None
    for elt, role in zip(elts, roles, strict=True):
        if _is_number_text(elt):
            continue
        console.message(f"    {elt}...")
        for name in names:
            one = [name]
            terms = elt.split("$")
            if terms and terms[-1] == "":
                terms.pop()
            if len(terms) == 1:
                if not rops.condition(dsi.aggregate(session, deparse_call("exists", terms[0]), one)[0]):
                    raise RError(f"'{terms[0]}' is not defined in {name}!")
                colnames = unlist(dsi.aggregate(session, deparse_call("colnamesDS", terms[0]), one)[0])
                # myterms[2] is NA here: NA %in% colnames
                if colnames is None or NA not in colnames.data:
                    raise RError(f"'NA' is not defined in {name}!")
                call0 = f"isNaDS({elt})"
                if role in ("offset", "weights"):
                    classes = _check_class(session, names, elt)
                if role == "weights":
                    call1 = f"checkNegValueDS({elt})"
            elif data is not None:
                colnames = unlist(dsi.aggregate(session, deparse_call("colnamesDS", data), one)[0])
                target = elt if colnames is None or elt not in colnames.data else f"{data}${elt}"
                if target == elt:
                    is_defined(session, names, elt)
                call0 = f"isNaDS({target})"
                if role in ("offset", "weights"):
                    classes = _check_class(session, names, target)
                if role == "weights":
                    call1 = f"checkNegValueDS({target})"
            else:
                is_defined(session, names, elt)
                call0 = f"isNaDS({elt})"
                if role in ("offset", "weights"):
                    classes = _check_class(session, names, elt)
                if role == "weights":
                    call1 = f"checkNegValueDS({elt})"
            if call0 is None:
                raise RError("object 'call0' not found")
            if rops.condition(dsi.aggregate(session, call0, one)[0]):
                raise RError(f"The variable {elt} in {name} is missing at complete (all values are 'NA').")
            if role in ("offset", "weights"):
                if classes is None:
                    raise RError("object 'typ' not found")
                if "numeric" not in classes:
                    raise RError(f"'{elt}' is not a numeric in {name}")
            if role == "weights":
                if call1 is None:
                    raise RError("object 'call1' not found")
                if rops.condition(unlist(dsi.aggregate(session, call1, one)[0])):
                    raise RError(f"Negative weights not allowed - check study {name}!")

