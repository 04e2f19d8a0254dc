"""Plots of the catalog: a Vega-Lite spec for the interactive frontier chart, and matplotlib SVGs (Agg,
object API, no pyplot) for the pages' no-JavaScript fallback and the accuracy curves.

- :func:`frontier_spec`: a task's verified tickets as a Vega-Lite spec (JSON-able dict with inline data):
  test accuracy against % weights remaining on a reversed log axis ticked at the lottery-ticket papers'
  densities, every ticket a point with a tooltip and a link to its page, its controls, its measured dense
  parent at 100%, the dense line and the frontier. Drawn in the browser by the vendored vega-embed.
- :func:`frontier_svg`: the same content as a static image (``wide=False`` for phones).
- :func:`curves_svg`: the test-accuracy curves of a verification's runs, one color per role.

All are pure functions of their data. :func:`stored_plot` keeps a rendering in the file storage under a
digest of its data, so an image is drawn once per change of that data (the catalog draws them when a
verification finishes, see ``signals.py``), never again per visitor.
"""

from __future__ import annotations

import hashlib
import io
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

#: Seconds a rendered plot stays in the cache (its key changes with its data, so this bounds only memory).
PLOT_CACHE_SECONDS = 24 * 3600

ROLE_COLORS = {
    "ticket": "#2e8540",
    "dense": "#333333",
    "reinit": "#d2691e",
    "random_mask": "#7b4fb0",
    "supermask": "#808080",
}
ROLE_LABELS = {
    "ticket": "ticket (own init + mask)",
    "dense": "dense parent (own init, all weights)",
    "reinit": "control: same mask, random re-init",
    "random_mask": "control: random mask, same layer densities",
    "supermask": "control: mask on untrained init",
}
#: The densities (% of weights remaining) the lottery-ticket papers report: 0.8^k for k = 0, 3, 7, 12, 15, 18.
PAPER_TICKS = [100.0, 51.2, 21.0, 7.0, 3.6, 1.9]
#: Sparser ticks added when a task's tickets go below 1.9%.
SPARSE_TICKS = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]
#: Above this many points the scatter layers are rasterised inside the SVG (keeps the file small).
RASTERIZE_ABOVE = 400
#: The interactive chart carries at most this many tickets (the frontier's always among them) ...
CHART_MAX_TICKETS = 2000
#: ... and their controls and dense parents only up to this many.
CHART_DETAIL_MAX_TICKETS = 400

#: What each kind of point is called (legend and tooltips) and drawn with, in the chart and the image.
KIND_STYLE = {
    "winning ticket": ("#2e8540", "circle"),
    "verified, not winning": ("#1f6fb2", "circle"),
    "verified ticket": ("#1f6fb2", "circle"),
    "dense parent": ("#333333", "square"),
    "control: same mask, re-initialised": ("#d2691e", "triangle-up"),
    "control: random mask, same layer densities": ("#7b4fb0", "triangle-down"),
}
_OUTCOME_KIND = {"winning": "winning ticket", "verified_not_winning": "verified, not winning"}


@dataclass(frozen=True)
class FrontierPoint:
    """One verified ticket on a leaderboard plot; controls map role -> the verification's statistic;
    ``dense`` is its measured dense parent's statistic; ``outcome`` the display key (``winning``, ...)."""

    name: str
    density: float
    accuracy: float
    controls: dict[str, float] = field(default_factory=dict)
    dense: float | None = None
    outcome: str = "verified"
    url: str = ""

    @property
    def kind(self) -> str:
        return _OUTCOME_KIND.get(self.outcome, "verified ticket")


@dataclass(frozen=True)
class RunCurve:
    role: str
    seed: int
    iterations: list[int]
    accuracies: list[float]


def frontier(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """The tickets no sparser-or-equal ticket beats: walking from dense to sparse, those that set a new
    best accuracy *for their density or any sparser one*, i.e. the upper-right envelope on the plot."""
    best: list[FrontierPoint] = []
    top = float("-inf")
    for p in sorted(points, key=lambda p: (p.density, -p.accuracy)):
        if p.accuracy > top:
            best.append(p)
            top = p.accuracy
    # ``best`` runs sparse -> dense with increasing accuracy: each is the best at its density or sparser.
    return best


def dense_line(points: Sequence[FrontierPoint], baseline: float | None) -> tuple[float | None, str]:
    """The accuracy the dense line is drawn at and what it is: the median of the tickets' measured dense
    parents when any was measured, else the task's recorded dense baseline."""
    measured = [p.dense for p in points if p.dense is not None]
    if measured:
        n = len(measured)
        return statistics.median(measured), f"dense network: median of {n} measured dense parent{'s' * (n != 1)}"
    if baseline is not None:
        return baseline, "dense network: the task's recorded baseline"
    return None, ""


def density_ticks(min_percent: float) -> list[float]:
    """The paper's densities, plus sparser round ones down to the sparsest ticket."""
    return PAPER_TICKS + [t for t in SPARSE_TICKS if t >= min_percent / 1.5 and t < PAPER_TICKS[-1]]


def _tick_text(value: float) -> str:
    return f"{value:g}%"


def _x_domain(points: Sequence[FrontierPoint]) -> tuple[float, float]:
    lowest = min([p.density * 100 for p in points] + [PAPER_TICKS[-1]])
    return 130.0, lowest / 1.35


def _chart_points(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    if len(points) <= CHART_MAX_TICKETS:
        return list(points)
    keep = {p.name for p in frontier(points)}
    rest = sorted((p for p in points if p.name not in keep), key=lambda p: -p.accuracy)
    return [p for p in points if p.name in keep] + rest[: CHART_MAX_TICKETS - len(keep)]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def frontier_spec(points: Sequence[FrontierPoint], *, baseline: float | None, task: str) -> dict:
    """The leaderboard chart of one task as a Vega-Lite v5 spec (data inline; fractions in, % out)."""
    shown = _chart_points(points)
    detail = len(shown) <= CHART_DETAIL_MAX_TICKETS
    rows: list[dict] = []
    for p in shown:
        gap = None if p.dense is None else round((p.accuracy - p.dense) * 100, 2)
        base = {"ticket": p.name, "url": p.url, "density": round(p.density * 100, 4), "vs_dense": gap}
        rows.append({**base, "kind": p.kind, "accuracy": _pct(p.accuracy)})
        if detail:
            if p.dense is not None:
                rows.append({**base, "kind": "dense parent", "density": 100.0, "accuracy": _pct(p.dense)})
            for role, kind in (("reinit", "control: same mask, re-initialised"),
                               ("random_mask", "control: random mask, same layer densities")):
                if role in p.controls:
                    rows.append({**base, "kind": kind, "accuracy": _pct(p.controls[role])})
    best = frontier(shown)
    steps: list[dict] = []
    if best:
        for p in best:
            steps.append({"density": round(p.density * 100, 4), "accuracy": _pct(p.accuracy), "ticket": p.name})
        steps.append({"density": round(max(p.density for p in shown) * 100, 4), "accuracy": _pct(best[-1].accuracy),
                      "ticket": best[-1].name})
    line, line_text = dense_line(points, baseline)
    hi, lo = _x_domain(shown)
    ticks = [t for t in density_ticks(lo) if lo <= t <= hi]
    kinds = [k for k in KIND_STYLE if any(r["kind"] == k for r in rows)]
    x = {"field": "density", "type": "quantitative", "title": "weights remaining (density, %, log scale)",
         "scale": {"type": "log", "domain": [lo, hi], "reverse": True, "nice": False},
         "axis": {"values": ticks, "labelExpr": "datum.value + '%'", "grid": True, "labelFlush": True}}
    y = {"field": "accuracy", "type": "quantitative", "title": "verified test accuracy (%)",
         "scale": {"zero": False}}
    layers: list[dict] = []
    if line is not None:
        layers.append({
            "data": {"values": [{"accuracy": _pct(line), "label": f"dense {line * 100:.1f}%", "what": line_text}]},
            "layer": [
                {"mark": {"type": "rule", "strokeDash": [6, 4], "color": "#333333", "strokeWidth": 1.4},
                 "encoding": {"y": {**y}, "tooltip": [{"field": "what", "title": "line"},
                                                      {"field": "accuracy", "title": "accuracy (%)"}]}},
                {"mark": {"type": "text", "align": "right", "baseline": "bottom", "dx": -4, "dy": -3,
                          "fontSize": 12, "color": "#333333"},
                 "encoding": {"x": {"datum": lo, "type": "quantitative", "scale": x["scale"]},
                              "y": {**y}, "text": {"field": "label"}}},
            ],
        })
    if steps:
        layers.append({
            "data": {"values": steps},
            "mark": {"type": "line", "interpolate": "step-after", "color": "#111111", "strokeWidth": 2},
            "encoding": {"x": x, "y": y, "order": {"field": "density", "sort": "ascending"},
                         "tooltip": [{"field": "ticket", "title": "frontier ticket"}]},
        })
    if rows:
        layers.append({
            "data": {"values": rows},
            "mark": {"type": "point", "filled": True, "size": 80 if len(rows) < 300 else 30, "opacity": 0.9,
                     "cursor": "pointer"},
            "encoding": {
                "x": x, "y": y,
                "color": {"field": "kind", "type": "nominal", "title": None,
                          "scale": {"domain": kinds, "range": [KIND_STYLE[k][0] for k in kinds]},
                          "legend": {"orient": "bottom", "columns": 2, "labelLimit": 320, "symbolSize": 90}},
                "shape": {"field": "kind", "type": "nominal", "title": None,
                          "scale": {"domain": kinds, "range": [KIND_STYLE[k][1] for k in kinds]}},
                "href": {"field": "url"},
                "tooltip": [
                    {"field": "ticket", "title": "ticket"}, {"field": "kind", "title": "point"},
                    {"field": "density", "title": "density (% weights remaining)"},
                    {"field": "accuracy", "title": "test accuracy (%)"},
                    {"field": "vs_dense", "title": "ticket vs its dense parent (pp)"},
                ],
            },
        })
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "description": f"{task}: verified test accuracy against density for {len(points)} verified tickets",
        "title": {"text": f"{task}: verified tickets ({len(points)})", "anchor": "start", "fontSize": 14},
        "width": "container", "height": 340,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": {"font": "system-ui, -apple-system, Segoe UI, Roboto, DejaVu Sans, sans-serif",
                   "axis": {"labelFontSize": 12, "titleFontSize": 12}, "legend": {"labelFontSize": 12},
                   "view": {"stroke": None}},
        "layer": layers or [{"data": {"values": [{"t": "no verified tickets yet"}]}, "mark": "text",
                             "encoding": {"text": {"field": "t"}}}],
    }


def _figure(width: float = 7.5, height: float = 4.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tickethub"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _density_axis(ax, lo: float, hi: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_xlim(hi, lo)  # reversed: sparser to the right, as in the papers
    ticks = [t for t in density_ticks(lo) if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
    ax.set_xlabel("weights remaining (density, %, log scale)")


def frontier_svg(points: Sequence[FrontierPoint], *, baseline: float | None, task: str, wide: bool = True) -> str:
    """The leaderboard plot of one task as a static SVG (fractions in); ``wide=False`` is drawn for a
    phone's width with larger text. The no-JavaScript fallback of :func:`frontier_spec`."""
    import matplotlib

    with matplotlib.rc_context({"font.size": 10 if wide else 13}):
        fig, ax = _figure(7.5, 4.8) if wide else _figure(4.2, 5.6)
        many = len(points) > RASTERIZE_ABOVE
        # Line2D markers (plot with no line) draw far faster than scatter's PathCollection at 10,000s of points.
        size = 3.0 if many else (5.5 if wide else 7.0)
        if points:
            for role, marker in (("random_mask", "v"), ("reinit", "^")):
                xs = [p.density * 100 for p in points if role in p.controls]
                ys = [p.controls[role] * 100 for p in points if role in p.controls]
                if xs:
                    ax.plot(xs, ys, linestyle="none", marker=marker, markersize=size, markerfacecolor="none",
                            markeredgecolor=ROLE_COLORS[role], markeredgewidth=0.9, alpha=0.6 if many else 0.9,
                            label=ROLE_LABELS[role], rasterized=many, zorder=2)
            dense = [p.dense * 100 for p in points if p.dense is not None]
            if dense:
                ax.plot([100.0] * len(dense), dense, linestyle="none", marker="s", markersize=size,
                        markerfacecolor="none", markeredgecolor=ROLE_COLORS["dense"], markeredgewidth=0.9,
                        label=ROLE_LABELS["dense"], rasterized=many, zorder=2)
            for kind in ("winning ticket", "verified, not winning", "verified ticket"):
                chosen = [p for p in points if p.kind == kind]
                if chosen:
                    ax.plot([p.density * 100 for p in chosen], [p.accuracy * 100 for p in chosen],
                            linestyle="none", marker="o", markersize=size, markerfacecolor=KIND_STYLE[kind][0],
                            markeredgewidth=0, alpha=0.7 if many else 1.0, label=kind, rasterized=many, zorder=3)
            best = frontier(points)
            densest = max(p.density for p in points)
            xs = [p.density * 100 for p in best] + [densest * 100]  # the last step holds to the densest ticket
            ys = [p.accuracy * 100 for p in best] + [best[-1].accuracy * 100]
            ax.step(xs, ys, where="post", color="#111111", linewidth=2.0,
                    label="frontier (best at this density or sparser)", zorder=4)
        hi, lo = _x_domain(points)
        _density_axis(ax, lo, hi)
        line, line_text = dense_line(points, baseline)
        if line is not None:
            ax.axhline(line * 100, color="#333333", linestyle="--", linewidth=1.1, zorder=1)
            ax.annotate(f"dense {line * 100:.1f}%", xy=(lo, line * 100), xytext=(-3, 3), textcoords="offset points",
                        ha="right", va="bottom", color="#333333")
        ax.set_ylabel("verified test accuracy (%)")
        ax.set_title(f"{task}: verified tickets ({len(points)})", loc="left")
        ax.grid(True, which="major", alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, "no verified tickets yet", transform=ax.transAxes, ha="center", va="center",
                    color="#666666")
        if ax.get_legend_handles_labels()[0]:
            fig.legend(loc="outside lower center", ncols=2 if wide else 1, fontsize=8 if wide else 11,
                       frameon=False)
        return _svg(fig)


def curves_svg(curves: Sequence[RunCurve], *, title: str = "") -> str:
    """Test accuracy against training iteration for every run (one color per role, one line per seed)."""
    fig, ax = _figure(7.5, 3.8)
    labelled: set[str] = set()
    for curve in curves:
        if not curve.iterations:
            continue
        label = ROLE_LABELS.get(curve.role, curve.role) if curve.role not in labelled else None
        labelled.add(curve.role)
        ax.plot(curve.iterations, [a * 100 for a in curve.accuracies], color=ROLE_COLORS.get(curve.role, "#444"),
                linewidth=1.2, alpha=0.85, label=label)
    ax.set_xlabel("training iteration")
    ax.set_ylabel("test accuracy (%)")
    if title:
        ax.set_title(title, loc="left")
    ax.grid(True, alpha=0.3)
    if labelled:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no curves recorded", transform=ax.transAxes, ha="center", va="center", color="#666")
    return _svg(fig)


def curves_spec(curves: Sequence[RunCurve], *, title: str = "") -> dict:
    """The accuracy curves as a Vega-Lite spec: one line per run, one color per role, a tooltip per point."""
    rows = [{"role": ROLE_LABELS.get(c.role, c.role), "run": c.seed, "iteration": it, "accuracy": round(a * 100, 2)}
            for c in curves for it, a in zip(c.iterations, c.accuracies, strict=False)]
    roles = [r for r in ROLE_LABELS if any(c.role == r and c.iterations for c in curves)]
    domain = [ROLE_LABELS[r] for r in roles]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "description": f"test accuracy during training for every run: {title}",
        "title": {"text": title, "anchor": "start", "fontSize": 14},
        "width": "container", "height": 300,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": {"font": "system-ui, -apple-system, Segoe UI, Roboto, DejaVu Sans, sans-serif",
                   "axis": {"labelFontSize": 12, "titleFontSize": 12}, "legend": {"labelFontSize": 12},
                   "view": {"stroke": None}},
        "data": {"values": rows or [{"role": "no curves recorded", "run": 0, "iteration": 0, "accuracy": None}]},
        "mark": {"type": "line", "point": {"size": 18}, "strokeWidth": 1.6, "opacity": 0.9},
        "encoding": {
            "x": {"field": "iteration", "type": "quantitative", "title": "training iteration",
                  "axis": {"labelExpr": "datum.value >= 1000 ? format(datum.value / 1000, '~g') + 'k' : datum.value",
                           "labelFlush": True}},
            "y": {"field": "accuracy", "type": "quantitative", "title": "test accuracy (%)", "scale": {"zero": False}},
            "color": {"field": "role", "type": "nominal", "title": None,
                      "scale": {"domain": domain, "range": [ROLE_COLORS[r] for r in roles]},
                      "legend": {"orient": "bottom", "columns": 2, "labelLimit": 320}},
            "detail": {"field": "run"},
            "tooltip": [{"field": "role", "title": "run"}, {"field": "run", "title": "seed index"},
                        {"field": "iteration"}, {"field": "accuracy", "title": "test accuracy (%)"}],
        },
    }


def data_key(kind: str, data: object) -> str:
    """A cache key naming a plot by a digest of the data it is drawn from."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:40]
    return f"catalog:plot:{kind}:{digest}"


def stored_plot(key: str, render: Callable[[], str], *, suffix: str = "svg") -> str:
    """The rendering stored under ``key`` in the file storage (shared by web and worker processes and
    kept across restarts), rendering and storing it on a miss; the cache fronts the storage."""
    cached = cache.get(key)
    if cached is not None:
        return cached
    path = f"plots/{key.replace(':', '-')}.{suffix}"
    try:
        with default_storage.open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (FileNotFoundError, OSError):
        text = render()
        if not default_storage.exists(path):
            default_storage.save(path, ContentFile(text.encode("utf-8")))
    cache.set(key, text, PLOT_CACHE_SECONDS)
    return text


def cached_svg(key: str, render: Callable[[], str]) -> str:
    """The SVG under ``key``, rendering (and storing) it on a miss."""
    svg = cache.get(key)
    if svg is None:
        svg = render()
        cache.set(key, svg, PLOT_CACHE_SECONDS)
    return svg
