"""Forest plots of an ``SLMAResult`` (matplotlib, imported only when a plot is drawn).

One plot per term: each study that estimated it with its 95% CI (estimate +/- 1.96 se, as metafor's
forest plot), then one diamond per pooling method spanning the pooled 95% CI and centred on the pooled
estimate. Studies left out of this term are listed under the plot with their reasons.

The figures are plain ``matplotlib.figure.Figure`` objects (no pyplot state, Agg rendering); the
artists carry ``gid``s (``study:<name>`` the square, ``ci:<name>`` its whiskers, ``pooled:<method>``)
so they can be found and checked.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from pydsbase.results import SLMAResult

__all__ = ["forest_plot", "save_forest_plots"]

_Z975 = 1.959963984540054  # qnorm(0.975), metafor's default level 95
_COLOURS = {"ML": "#1f77b4", "REML": "#d62728", "FE": "#2ca02c"}


def forest_plot(
    result: SLMAResult,
    term: str,
    methods: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the forest plot of ``term``; on ``ax`` when given, else on a new figure. Returns the figure."""
    methods = list(methods or result.methods)
    rows = [result.get(term, m) for m in methods]
    studies = list(rows[0].studies)
    notes = [textwrap.fill(str(e), 110, subsequent_indent="    ") for e in result.exclusions_for(term)]
    note_lines = sum(n.count("\n") + 1 for n in notes) + 1 if notes else 0
    own_figure = ax is None
    if ax is None:
        from matplotlib.figure import Figure

        rows_height = 0.35 * (len(studies) + len(rows) + 2)
        notes_height = 0.16 * note_lines
        height = 0.9 + rows_height + notes_height
        fig = Figure(figsize=(8.0, height))
        fig.subplots_adjust(left=0.2, right=0.97, top=1 - 0.45 / height, bottom=(0.5 + notes_height) / height)
        ax = fig.add_subplot()
    figure = ax.get_figure(root=True)
    from matplotlib.figure import Figure as _Figure

    assert isinstance(figure, _Figure)

    labels: list[str] = []
    positions: list[float] = []
    y = float(len(studies) + len(rows) + 1)
    for name in studies:
        fit = result.study(name)
        est, se = fit.estimates[term], fit.std_errors[term]
        marker, _caps, (whiskers,) = ax.errorbar(
            [est], [y], xerr=[[_Z975 * se], [_Z975 * se]], fmt="s", color="black", markersize=5, capsize=3
        )
        marker.set_gid(f"study:{name}")
        whiskers.set_gid(f"ci:{name}")
        labels.append(name)
        positions.append(y)
        y -= 1.0
    y -= 1.0
    for row in rows:
        _diamond(ax, row.estimate, row.ci_lb, row.ci_ub, y, _COLOURS.get(row.method, "grey"), f"pooled:{row.method}")
        labels.append(f"{row.method} pooled")
        positions.append(y)
        y -= 1.0

    reference = rows[0].estimate
    ax.axvline(reference, color="grey", linestyle=":", linewidth=0.8)
    if _spans_zero(result, term, studies, rows):
        ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_yticks(positions, labels)
    ax.set_ylim(y + 0.5, len(studies) + len(rows) + 1.5)
    ax.set_xlabel(f"{term}: estimate (95% CI)")
    ax.set_title(f"{result.formula or 'lmer'} — {term}" if result.formula else term, fontsize=10)
    if notes and own_figure:
        figure.text(0.01, 0.01, "Not pooled:\n" + "\n".join(notes), va="bottom", fontsize=7, gid="exclusions")
    elif notes:
        ax.annotate(
            "Not pooled:\n" + "\n".join(notes),
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -30),
            textcoords="offset points",
            va="top",
            fontsize=7,
            gid="exclusions",
        )
    return figure


def save_forest_plots(
    result: SLMAResult,
    directory: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    terms: Sequence[str] | None = None,
    dpi: int = 150,
) -> list[Path]:
    """Write one forest plot per pooled term in every format; return the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for term in terms or result.pooled_terms():
        figure = forest_plot(result, term)
        for fmt in formats:
            if fmt not in ("png", "svg", "pdf"):
                raise ValueError(f"unsupported plot format {fmt!r}: use png, svg or pdf")
            path = out / f"forest_{_slug(term)}.{fmt}"
            figure.savefig(path, format=fmt, dpi=dpi, metadata=_metadata(fmt), bbox_inches="tight")
            written.append(path)
    return written


def _diamond(ax: Axes, centre: float, low: float, high: float, y: float, colour: str, gid: str) -> Any:
    from matplotlib.patches import Polygon

    half = 0.3
    patch = Polygon(
        [(low, y), (centre, y + half), (high, y), (centre, y - half)], closed=True, facecolor=colour, edgecolor=colour
    )
    patch.set_gid(gid)
    ax.add_patch(patch)
    return patch


def _spans_zero(result: SLMAResult, term: str, studies: Sequence[str], rows: Sequence[Any]) -> bool:
    lows = [r.ci_lb for r in rows] + [
        result.study(s).estimates[term] - _Z975 * result.study(s).std_errors[term] for s in studies
    ]
    highs = [r.ci_ub for r in rows] + [
        result.study(s).estimates[term] + _Z975 * result.study(s).std_errors[term] for s in studies
    ]
    finite = [v for v in lows + highs if math.isfinite(v)]
    return bool(finite) and min(finite) <= 0.0 <= max(finite)


def _slug(term: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in term).strip("_")
    return cleaned or "term"


def _metadata(fmt: str) -> dict[str, Any] | None:
    # Reproducible files: no creation date in SVG/PDF.
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return None
