"""docs/TUTORIAL.md runs as written, against real local studies, and shows what it says it shows.

Every ``python`` block runs in order in one namespace (in a temporary working folder); every
``pydsbase ...`` line of the ``sh`` blocks runs as ``python -m pydsbase ...``. Then the values are
checked: the rich layer pools ``Male`` over the two hospitals that estimated it with exactly the
doubles ``ds_lmer_slma`` gives for those two, and names hospital C's missing coefficient.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mdblocks import code_blocks, exec_python, runs_docs

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "TUTORIAL.md"


def blocks() -> list[tuple[str, str]]:
    return code_blocks(TUTORIAL)


def test_the_tutorial_has_runnable_blocks() -> None:
    kinds = [kind for kind, _ in blocks()]
    assert kinds.count("python") >= 8 and "sh" in kinds
    commands = [line for kind, code in blocks() if kind == "sh" for line in code.splitlines()]
    assert sum(line.startswith("pydsbase lmer ") for line in commands) == 2


@runs_docs
def test_tutorial_runs_and_shows_the_promised_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    printed = io.StringIO()
    cli_outputs: list[str] = []
    try:
        for kind, code in blocks():
            if kind == "python":
                exec_python(code, TUTORIAL, namespace, printed)
            elif kind == "sh":
                for line in code.splitlines():
                    if not line.startswith("pydsbase "):
                        continue
                    argv = shlex.split(line)[1:]
                    done = subprocess.run(
                        [sys.executable, "-m", "pydsbase", *argv], capture_output=True, text=True, timeout=600
                    )
                    assert done.returncode == 0, done.stderr
                    cli_outputs.append(done.stdout)
    finally:
        session = namespace.get("session")
        if session is not None and session.conns:
            session.close()

    result, fit = namespace["result"], namespace["fit"]
    a, b, c = "hospital.a", "hospital.b", "hospital.c"
    assert result.study_names == [a, b, c]
    assert "ds.lmerSLMA stops: number of items to replace is not a multiple of replacement length" in printed.getvalue()

    # Male: pooled over A and B only, hospital C named with its reason
    (exclusion,) = result.exclusions
    assert (exclusion.study, exclusion.term, exclusion.kind) == (c, "Male", "missing_coefficient")
    assert exclusion.message == (
        "hospital.c has no coefficient 'Male'"
        " (lme4: fixed-effect model matrix is rank deficient so dropping 1 column / coefficient)"
    )
    assert result.study(c).terms == ["(Intercept)", "trtGrp"]
    for term in ("(Intercept)", "trtGrp"):
        assert result.get(term, "REML").studies == (a, b, c)

    # the same two studies, the same doubles as the R-compatible call
    pooled = fit["SLMA.pooled.ests.matrix"]
    betas = fit["betamatrix.valid"]
    assert pooled.dimnames[0] == ["(Intercept)", "trtGrp", "Male"]
    for column, study in enumerate((a, b)):
        for row, term in enumerate(pooled.dimnames[0]):
            assert result.study(study).estimates[term].hex() == betas.data[column * 3 + row].hex()
    for m, method in enumerate(("ML", "REML", "FE")):
        row = result.get("Male", method)
        assert row.studies == (a, b) and row.k == 2
        assert row.estimate.hex() == pooled.data[(2 * m) * 3 + 2].hex()
        assert row.se.hex() == pooled.data[(2 * m + 1) * 3 + 2].hex()
        assert row.ci_lb < row.estimate < row.ci_ub

    table = namespace["table"]
    assert table.loc[("Male", "FE"), "estimate"] == result.get("Male", "FE").estimate
    assert (tmp_path / "result.json").is_file()
    assert [p.name for p in namespace["paths"]] == [
        f"forest_{t}.{f}" for t in ("Intercept", "trtGrp", "Male") for f in ("png", "svg")
    ]
    labels = [t.get_text() for t in namespace["figure"].axes[0].get_yticklabels()]
    assert labels == [a, b, "ML pooled", "REML pooled", "FE pooled"]

    # the command line, against the same studies
    table_out, plot_out = cli_outputs
    assert table_out.splitlines()[0] == "SLMAResult(BMI ~ trtGrp + Male + (1|idDoctor): 3 of 3 studies)"
    assert "'Male' in hospital.c: missing coefficient" in table_out
    assert f"{result.get('Male', 'REML').estimate:12.6g}" in table_out
    assert (tmp_path / "cli-plots" / "forest_Male.svg").is_file()
    assert "# not pooled: 'Male' in hospital.c" in plot_out

    # Opal's API and Armadillo's in one session: the same value, bit for bit, as the local studies gave
    from pydsbase.rvalue import to_node

    mixed_fit = namespace["mixed_fit"]
    assert to_node(mixed_fit) == to_node(fit) and mixed_fit.servers == fit.servers
