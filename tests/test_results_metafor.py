"""SLMAResult's extended statistics against metafor itself, and against dsBaseClient's pooled matrix.

- Against metafor 3.8-1 run through Rscript in the test on the very same (yi, sei) doubles (passed as
  C99 hex, read back exactly): every statistic of every (term, method) row. p-values (pval, QEp) agree
  to 1e-14 absolute / 1e-12 relative, as for the metafor port (issue 2: R's pnorm/pchisq tails are
  reproduced to that tolerance, not bit for bit); every other statistic must be the identical double.
- Against the golden ``SLMA.pooled.ests.matrix`` (no R needed): the pooled estimates and standard
  errors of the rich layer are dsBaseClient's doubles, bit for bit.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from pydsbase.results import METHODS, SLMAResult, slma_result
from pydsbase.rvalue import RAtomic, RList, from_node

P_ABS, P_REL = 1e-14, 1e-12
EXACT = ("estimate", "se", "z", "ci_lb", "ci_ub", "tau2", "se_tau2", "Q", "I2", "H2")
R_FIELDS = ("beta", "se", "zval", "pval", "ci.lb", "ci.ub", "tau2", "se.tau2", "QE", "QEp", "I2", "H2")
OURS = ("estimate", "se", "z", "p", "ci_lb", "ci_ub", "tau2", "se_tau2", "Q", "Q_p", "I2", "H2")

R_SCRIPT = r"""
suppressMessages(library(metafor))
stopifnot(packageVersion("metafor") == "3.8.1")
lines <- readLines(commandArgs(TRUE)[1])
hex <- function(x) if (is.null(x) || is.na(x)) "NA" else sprintf("%a", x)
for (line in lines) {
  f <- strsplit(line, " ", fixed = TRUE)[[1]]
  yi <- as.numeric(strsplit(f[3], ",", fixed = TRUE)[[1]])
  sei <- as.numeric(strsplit(f[4], ",", fixed = TRUE)[[1]])
  r <- rma(yi = yi, sei = sei, method = f[2])
  vals <- c(hex(r$beta), hex(r$se), hex(r$zval), hex(r$pval), hex(r$ci.lb), hex(r$ci.ub), hex(r$tau2),
            hex(r$se.tau2), hex(r$QE), hex(r$QEp), hex(r$I2), hex(r$H2), as.character(r$k))
  cat(f[1], f[2], paste(vals, collapse = " "), "\n")
}
"""


def load(golden_dir: Path, case: str) -> tuple[RList, list[str]]:
    data = json.loads((golden_dir / f"{case}.json").read_text())
    value = from_node(data["result"])
    assert isinstance(value, RList)
    return value, list(data["call"]["effective_arguments"]["datasources"]["servers"])


def drop_term(value: RList, study: int, term: str) -> RList:
    inner = value["output.summary"]
    assert isinstance(inner, RList)
    items = list(inner.data)
    summary = items[study]
    assert isinstance(summary, RList)
    matrix = summary["coefficients"]
    assert isinstance(matrix, RAtomic) and matrix.dim and matrix.dimnames
    nrow, ncol = matrix.dim
    rows = list(matrix.dimnames[0] or [])
    keep = [i for i, name in enumerate(rows) if name != term]
    reduced = RAtomic(
        "double",
        [matrix.data[j * nrow + i] for j in range(ncol) for i in keep],
        dim=[len(keep), ncol],
        dimnames=[[rows[i] for i in keep], list(matrix.dimnames[1] or [])],
    )
    items[study] = RList(
        [reduced if n == "coefficients" else v for n, v in summary.items()],
        names=summary.names,
        r_class=summary.r_class,
    )
    return RList(items, names=inner.names)


def cases(golden_dir: Path) -> dict[str, SLMAResult]:
    built: dict[str, SLMAResult] = {}
    for case in ("int_bmi_ri", "int_disclosure_binary_x_study1", "int_single_study", "slo_age_slope_by_doctor"):
        value, names = load(golden_dir, case)
        built[case] = slma_result(value, names)
    value, names = load(golden_dir, "int_interaction")
    built["int_interaction_dropped"] = slma_result(drop_term(value, 2, "trtGrp:Male"), names)
    return built


def metafor(rows: list[tuple[str, str, list[float], list[float]]], tmp_path: Path) -> dict[tuple[str, str], list[str]]:
    rscript = shutil.which("Rscript")
    assert rscript is not None
    spec = tmp_path / "rma_inputs.txt"
    spec.write_text(
        "".join(
            f"{key} {method} {','.join(y.hex() for y in yi)} {','.join(s.hex() for s in sei)}\n"
            for key, method, yi, sei in rows
        )
    )
    script = tmp_path / "rma.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run([rscript, str(script), str(spec)], capture_output=True, text=True, timeout=300, check=True)
    answers: dict[tuple[str, str], list[str]] = {}
    for line in out.stdout.splitlines():
        key, method, *values = line.split()
        answers[(key, method)] = values
    return answers


def as_double(text: str) -> float:
    return math.nan if text == "NA" else float.fromhex(text)


@pytest.mark.needs_r
def test_extended_statistics_are_metafors(golden_dir: Path, tmp_path: Path) -> None:
    built = cases(golden_dir)
    rows: list[tuple[str, str, list[float], list[float]]] = []
    index: dict[str, tuple[str, int]] = {}
    for case, result in built.items():
        for position, row in enumerate(result.pooled):
            key = f"r{len(index)}"
            index[key] = (case, position)
            fits = [result.study(s) for s in row.studies]
            rows.append(
                (key, row.method, [f.estimates[row.term] for f in fits], [f.std_errors[row.term] for f in fits])
            )
    answers = metafor(rows, tmp_path)
    assert len(answers) == len(rows) == sum(len(r.pooled) for r in built.values())
    for key, (case, position) in index.items():
        row = built[case].pooled[position]
        r_values = answers[(key, row.method)]
        assert int(r_values[-1]) == row.k
        for ours, r_name, text in zip(OURS, R_FIELDS, r_values[:-1], strict=True):
            got, expected = getattr(row, ours), as_double(text)
            where = f"{case} {row.term} {row.method} {ours} (metafor {r_name})"
            if ours in EXACT:
                assert (math.isnan(got) and math.isnan(expected)) or got.hex() == expected.hex(), where
            else:
                assert math.isclose(got, expected, rel_tol=P_REL, abs_tol=P_ABS), where


def test_dropped_coefficient_case_pools_the_others_over_every_study(golden_dir: Path) -> None:
    value, names = load(golden_dir, "int_interaction")
    result = slma_result(drop_term(value, 2, "trtGrp:Male"), names)
    assert result.get("trtGrp:Male", "REML").studies == ("cluster.int1", "cluster.int2")
    assert result.get("trtGrp:Male", "REML").k == 2
    assert [(e.study, e.term, e.kind) for e in result.exclusions] == [
        ("cluster.int3", "trtGrp:Male", "missing_coefficient")
    ]
    # the other terms are pooled over all three studies: dsBaseClient's own doubles
    pooled = value["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic)
    for t, term in enumerate(("(Intercept)", "trtGrp", "Male")):
        for m, method in enumerate(("ML", "REML", "FE")):
            row = result.get(term, method)
            assert row.k == 3
            assert row.estimate.hex() == pooled.data[(2 * m) * 4 + t].hex()
            assert row.se.hex() == pooled.data[(2 * m + 1) * 4 + t].hex()


@pytest.mark.parametrize(
    "case",
    [
        "int_bmi_ri",
        "int_bmi_ri_ml",
        "int_disclosure_binary_x_study1",
        "int_single_study",
        "int_interaction",
        "slo_slope_correlated",
        "int_missing_values",
    ],
)
def test_pooled_estimates_and_ses_are_dsbaseclients_doubles(golden_dir: Path, case: str) -> None:
    value, names = load(golden_dir, case)
    result = slma_result(value, names)
    pooled = value["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic) and pooled.dim
    nrow = pooled.dim[0]
    assert list(result.terms) == list(result.pooled_terms()) and len(result.terms) == nrow
    for t, term in enumerate(result.terms):
        for m, method in enumerate(("ML", "REML", "FE")):
            row = result.get(term, method)
            assert row.estimate.hex() == pooled.data[(2 * m) * nrow + t].hex(), (term, method)
            assert row.se.hex() == pooled.data[(2 * m + 1) * nrow + t].hex(), (term, method)
    assert {r.method for r in result.pooled} == set(METHODS)
