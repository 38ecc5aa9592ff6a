"""Forest plots: the artists themselves are checked (labels, diamond centres, CIs), not file sizes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pydsbase.results import METHODS, SLMAResult, slma_result
from pydsbase.rvalue import RAtomic, RList, from_node

pytest.importorskip("matplotlib", reason="matplotlib is an optional extra (pip install pydsbase[extras])")

from matplotlib.patches import Polygon  # noqa: E402

Z975 = 1.959963984540054


def fake_rma(yi: list[float], sei: list[float], method: str) -> Any:
    """A stand-in for pydsbase.meta.rma with distinct, irregular values per method."""
    shift = {"ML": 0.0123456789, "REML": -0.0234567891, "FE": 0.000345678912}[method]
    beta = sum(yi) / len(yi) + shift
    se = min(sei) / 1.7
    fields = dict(beta=beta, se=se, zval=beta / se, pval=0.01, ci_lb=beta - Z975 * se, ci_ub=beta + Z975 * se)
    fields.update(tau2=0.0, se_tau2=0.1, QE=1.0, QEp=0.6, I2=0.0, H2=1.0, k=len(yi))
    return type("Fit", (), fields)()


def result_with_dropped_male(golden_dir: Path) -> SLMAResult:
    case = json.loads((golden_dir / "int_bmi_ri.json").read_text())
    value = from_node(case["result"])
    assert isinstance(value, RList)
    inner = value["output.summary"]
    assert isinstance(inner, RList)
    items = list(inner.data)
    study2 = items[1]
    assert isinstance(study2, RList)
    matrix = study2["coefficients"]
    assert isinstance(matrix, RAtomic) and matrix.dimnames
    keep = [0, 1]
    reduced = RAtomic(
        "double",
        [matrix.data[j * 3 + i] for j in range(3) for i in keep],
        dim=[2, 3],
        dimnames=[["(Intercept)", "trtGrp"], list(matrix.dimnames[1] or [])],
    )
    items[1] = RList(
        [reduced if n == "coefficients" else v for n, v in study2.items()], names=study2.names, r_class=study2.r_class
    )
    names = case["call"]["effective_arguments"]["datasources"]["servers"]
    formula = "BMI ~ trtGrp + Male + (1|idDoctor)"
    return slma_result(RList(items, names=inner.names), names, formula=formula, rma=fake_rma)


def diamonds(fig: Any) -> dict[str, Polygon]:
    (ax,) = fig.axes
    return {
        str(p.get_gid()): p for p in ax.patches if isinstance(p, Polygon) and (p.get_gid() or "").startswith("pooled:")
    }


def test_study_labels_are_server_names_and_diamonds_sit_on_the_pooled_estimates(golden_dir: Path) -> None:
    result = result_with_dropped_male(golden_dir)
    for term, studies in (
        ("trtGrp", ["cluster.int1", "cluster.int2", "cluster.int3"]),
        ("Male", ["cluster.int1", "cluster.int3"]),
    ):
        fig = result.forest_plot(term)
        (ax,) = fig.axes
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [*studies, "ML pooled", "REML pooled", "FE pooled"]
        shapes = diamonds(fig)
        assert sorted(shapes) == sorted(f"pooled:{m}" for m in METHODS)
        ticks = dict(zip(labels, ax.get_yticks(), strict=True))
        for method in METHODS:
            row = result.get(term, method)
            xy = shapes[f"pooled:{method}"].get_xy()
            left, top, right, bottom = xy[0], xy[1], xy[2], xy[3]
            assert abs(top[0] - row.estimate) <= 1e-12 and abs(bottom[0] - row.estimate) <= 1e-12
            assert abs(left[0] - row.ci_lb) <= 1e-12 and abs(right[0] - row.ci_ub) <= 1e-12
            assert left[1] == ticks[f"{method} pooled"]
        # each study's square and whiskers: estimate +/- 1.96 se from its own coefficient table
        for name in studies:
            fit = result.study(name)
            (line,) = [ln for ln in ax.lines if ln.get_gid() == f"study:{name}"]
            assert list(line.get_xdata()) == [fit.estimates[term]]
            assert list(line.get_ydata()) == [ticks[name]]
            (bars,) = [c for c in ax.collections if c.get_gid() == f"ci:{name}"]
            (segment,) = bars.get_segments()
            se = fit.std_errors[term]
            assert math.isclose(segment[0][0], fit.estimates[term] - Z975 * se, rel_tol=0, abs_tol=1e-12)
            assert math.isclose(segment[1][0], fit.estimates[term] + Z975 * se, rel_tol=0, abs_tol=1e-12)


def test_excluded_study_is_named_under_the_plot(golden_dir: Path) -> None:
    result = result_with_dropped_male(golden_dir)
    fig = result.forest_plot("Male")
    (note,) = [t for t in fig.texts if t.get_gid() == "exclusions"]
    assert note.get_text() == (
        "Not pooled:\n'Male' in cluster.int2: missing coefficient: cluster.int2 has no coefficient 'Male'"
        " (the term is not in this\n    study's fitted model)"
    )
    assert [t for t in result.forest_plot("trtGrp").texts if t.get_gid() == "exclusions"] == []


def test_png_and_svg_are_written_for_every_term(golden_dir: Path, tmp_path: Path) -> None:
    from pydsbase.plots import save_forest_plots

    result = result_with_dropped_male(golden_dir)
    paths = save_forest_plots(result, tmp_path)
    assert [p.name for p in paths] == [
        "forest_Intercept.png",
        "forest_Intercept.svg",
        "forest_trtGrp.png",
        "forest_trtGrp.svg",
        "forest_Male.png",
        "forest_Male.svg",
    ]
    assert (tmp_path / "forest_Male.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "forest_Male.svg").read_text()
    assert all(f'id="pooled:{m}"' in svg for m in METHODS)
    assert 'id="study:cluster.int1"' in svg and 'id="study:cluster.int2"' not in svg
    with pytest.raises(ValueError, match="unsupported plot format"):
        save_forest_plots(result, tmp_path, formats=["bmp"])


def test_importing_pydsbase_loads_neither_matplotlib_nor_tqdm() -> None:
    code = (
        "import sys, pydsbase, pydsbase.results, pydsbase.progress, pydsbase.plots;"
        "print(sorted(m for m in ('matplotlib', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
