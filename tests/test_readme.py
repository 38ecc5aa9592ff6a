"""README.md's Python example runs as written (verbatim, in a temporary working folder) and gives the
values it says: the R-compatible pooled matrix and the rich result of the same fit, term by term."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from mdblocks import code_blocks, exec_python, runs_docs

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python() -> str:
    (code,) = [code for kind, code in code_blocks(README) if kind == "python"]
    return code


@runs_docs
def test_readme_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydsbase.rvalue import RAtomic

    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme"}
    printed = io.StringIO()
    exec_python(readme_python(), README, namespace, printed)

    fit, rich = namespace["fit"], namespace["rich"]
    pooled = fit["SLMA.pooled.ests.matrix"]
    assert isinstance(pooled, RAtomic)
    frame = pooled.to_pandas()
    assert list(frame.index) == ["(Intercept)", "trtGrp", "Male"]
    assert fit["num.valid.studies"].value() == 2
    assert frame.to_string() in printed.getvalue()
    assert rich.study_names == ["study1", "study2"]
    for term in frame.index:
        for method in ("ML", "REML", "FE"):
            got = rich.get(term, method)
            assert (got.estimate, got.se) == (frame.loc[term, f"pooled.{method}"], frame.loc[term, f"se.{method}"])
    # the demo's studies: treatment adds 2.5 to BMI, males 1.2
    assert abs(frame.loc["trtGrp", "pooled.REML"] - 2.5) < 1.0 and abs(frame.loc["Male", "pooled.REML"] - 1.2) < 0.5
