"""ds_lmer_slma on data sets without goldens (CNSIM, DASIM) against plain lme4 + metafor.

The golden cases all use CLUSTER data; the held-out ones use other DataSHIELD test data. Here the
same model is fitted by plain R code (utils::read.csv, lme4::lmer, summary, metafor::rma) in one R
process, and every study's coefficients and standard errors and every pooled number must be the
same double. That R process is embedded in Python and started like a study's (RBridge), so it has
the same two lme4 pins (r_server/lme4_numerics.py): a bare Rscript on a CPU whose L1 cache is not
32 KiB gives other last bits, which is what the pins are for.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from datashield import DSLoginBuilder

from pydsbase import Session, ds_lmer_slma
from pydsbase.rvalue import RAtomic, RList

pytestmark = pytest.mark.needs_r
ROOT = Path(__file__).resolve().parents[1]

MODELS = [
    ("CNSIM", "LAB_TSC ~ LAB_HDL + GENDER + (1|PM_BMI_CATEGORICAL)", True),
    ("CNSIM", "LAB_TRIG ~ PM_BMI_CONTINUOUS * GENDER + (1|PM_BMI_CATEGORICAL)", False),
    ("DASIM", "LAB_GLUC_FASTING ~ PM_BMI_CONTINUOUS + LAB_HDL + (1|PM_BMI_CATEGORICAL)", True),
]

R_SCRIPT = r"""
suppressMessages({library(lme4); library(metafor)})
formula <- stats::as.formula(args[1]); reml <- as.logical(args[2]); files <- args[-(1:2)]
betas <- NULL; ses <- NULL
for (f in files) {
  D <- utils::read.csv(f, header = TRUE)
  m <- suppressMessages(lme4::lmer(formula, data = D, REML = reml))
  cf <- summary(m)$coefficients
  betas <- cbind(betas, cf[, 1]); ses <- cbind(ses, cf[, 2])
  cat("study", sprintf("%a", cf[, 1]), sprintf("%a", cf[, 2]), "\n")
}
for (p in seq_len(nrow(betas))) {
  out <- c()
  for (method in c("ML", "REML", "FE")) {
    r <- metafor::rma(yi = betas[p, ], sei = ses[p, ], method = method)
    out <- c(out, r$beta, r$se)
  }
  cat("pooled", sprintf("%a", out), "\n")
}
"""


# Runs R_SCRIPT in an embedded R started like a study process's; `args` as Rscript would give them.
PLAIN_RUNNER = r"""
import sys
import rpy2.rinterface as ri
from r_server.rbridge import RBridge

RBridge().versions()  # starts R, loads lme4 and applies the pins
ri.globalenv["args"] = ri.StrSexpVector(sys.argv[2:])
ri.baseenv["source"](ri.StrSexpVector([sys.argv[1]]))
"""


def _hex(values: list[float]) -> list[str]:
    return [float(v).hex() for v in values]


def _r_hex(text: str) -> str:
    """R's %a and Python's float.hex() differ in spelling only: compare parsed doubles."""
    return float.fromhex(text).hex()


@pytest.mark.parametrize(("dataset", "formula", "reml"), MODELS)
def test_same_doubles_as_plain_lme4_and_metafor(
    dataset: str, formula: str, reml: bool, data_dir: Path, tmp_path: Path
) -> None:
    builder = DSLoginBuilder()
    csvs = []
    for i in (1, 2, 3):
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        csv = data_dir / dataset / f"{dataset}{i}.csv"
        shutil.copy(csv, folder / csv.name)
        csvs.append(str(csv))
        builder.add(f"sim{i}", url=f"local://{folder}", user="u", password="p", driver="pydsbase.LocalDriver")
    with Session(builder.build()) as session:
        session.assign_table("D", tables={f"sim{i}": f"{dataset}{i}" for i in (1, 2, 3)})
        result = ds_lmer_slma(session, formula=formula, data_name="D", reml=reml)
    assert isinstance(result, RList)
    assert result["num.valid.studies"].data == [3]  # type: ignore[union-attr]

    script = tmp_path / "plain.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run([sys.executable, "-c", PLAIN_RUNNER, str(script), formula, str(reml).upper(), *csvs],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split() for line in out.stdout.splitlines() if line.strip()]
    studies = [[_r_hex(x) for x in line[1:]] for line in lines if line[0] == "study"]
    pooled = [[_r_hex(x) for x in line[1:]] for line in lines if line[0] == "pooled"]

    summaries = result["output.summary"]
    assert isinstance(summaries, RList)
    for k, expected in enumerate(studies, start=1):
        coefficients = summaries[f"study{k}"]["coefficients"]  # type: ignore[index]
        assert isinstance(coefficients, RAtomic) and coefficients.dim is not None
        n = coefficients.dim[0]
        assert _hex(coefficients.data[: 2 * n]) == expected, f"study{k}"
    matrix = result["SLMA.pooled.ests.matrix"]
    assert isinstance(matrix, RAtomic) and matrix.dim is not None
    nterms = matrix.dim[0]
    for p, expected in enumerate(pooled):
        row = [matrix.data[p + j * nterms] for j in range(6)]
        assert _hex(row) == expected, f"pooled row {p + 1}"
