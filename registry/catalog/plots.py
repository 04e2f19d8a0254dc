"""Plots of the catalog, drawn with matplotlib (Agg, object API, no pyplot) as SVG text and cached.

- :func:`frontier_svg`: a task's verified tickets, test accuracy against % weights remaining (log scale,
  sparser to the right as in the lottery-ticket papers), the frontier (best accuracy at that density or
  sparser), the trained controls of every ticket and the dense baseline.
- :func:`curves_svg`: the test-accuracy curves of a verification's runs, one color per role.

Both are pure functions of their data. :func:`cached_svg` keys a rendering by a digest of the data it
was drawn from, so a page's plot is drawn once per change of that data.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.cache import cache

#: Seconds a rendered plot stays in the cache (its key changes with its data, so this bounds only memory).
PLOT_CACHE_SECONDS = 24 * 3600

ROLE_COLORS = {
    "ticket": "#1b7f3b",
    "reinit": "#d2691e",
    "random_mask": "#7b4fb0",
    "supermask": "#808080",
}
ROLE_LABELS = {
    "ticket": "ticket (own init + mask)",
    "reinit": "control: same mask, random re-init",
    "random_mask": "control: random mask, same layer densities",
    "supermask": "control: mask on untrained init",
}
#: Above this many points the scatter layers are rasterised inside the SVG (keeps the file small).
RASTERIZE_ABOVE = 400


@dataclass(frozen=True)
class FrontierPoint:
    """One verified ticket on a leaderboard plot; controls map role -> the verification's statistic."""

    name: str
    density: float
    accuracy: float
    controls: dict[str, float] = field(default_factory=dict)


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


def _figure(width: float = 7.5, height: float = 4.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tickethub", "font.size": 10}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


def _percent_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}%"))
    ax.invert_xaxis()
    ax.set_xlabel("% of weights remaining (log scale)")


def frontier_svg(points: Sequence[FrontierPoint], *, baseline: float | None, task: str) -> str:
    """The leaderboard plot of one task (accuracies as fractions, densities as fractions)."""
    fig, ax = _figure(7.5, 4.8)
    many = len(points) > RASTERIZE_ABOVE
    # Line2D markers (plot with no line) draw far faster than scatter's PathCollection at 10,000s of points.
    size = 3.0 if many else 5.5
    if points:
        for role, marker in (("random_mask", "v"), ("reinit", "^")):
            xs = [p.density * 100 for p in points if role in p.controls]
            ys = [p.controls[role] * 100 for p in points if role in p.controls]
            if xs:
                ax.plot(xs, ys, linestyle="none", marker=marker, markersize=size, markerfacecolor="none",
                        markeredgecolor=ROLE_COLORS[role], markeredgewidth=0.8, alpha=0.6 if many else 0.9,
                        label=ROLE_LABELS[role], rasterized=many, zorder=2)
        ax.plot([p.density * 100 for p in points], [p.accuracy * 100 for p in points], linestyle="none",
                marker="o", markersize=size, markerfacecolor=ROLE_COLORS["ticket"], markeredgewidth=0,
                alpha=0.7 if many else 1.0, label="verified ticket", rasterized=many, zorder=3)
        best = frontier(points)
        densest = max(p.density for p in points)
        xs = [p.density * 100 for p in best] + [densest * 100]  # the last step holds to the densest ticket
        ys = [p.accuracy * 100 for p in best] + [best[-1].accuracy * 100]
        ax.step(xs, ys, where="post",
                color="#111111", linewidth=2.0, label="frontier (best at this density or sparser)", zorder=4)
    if baseline is not None:
        ax.axhline(baseline * 100, color="#333333", linestyle="--", linewidth=1.1,
                   label=f"dense baseline {baseline * 100:.1f}%", zorder=1)
        ax.plot([100.0], [baseline * 100], linestyle="none", marker="s", color="#333333", markersize=5.5, zorder=5)
    _percent_axis(ax)
    if points or baseline is not None:
        densities = [p.density * 100 for p in points] + [100.0]
        ax.set_xlim(max(densities) * 1.3, min(densities) / 1.3)
    ax.set_ylabel("verified test accuracy (%)")
    ax.set_title(f"{task}: verified tickets ({len(points)})", loc="left")
    ax.grid(True, which="major", alpha=0.3)
    if not points:
        ax.text(0.5, 0.5, "no verified tickets yet", transform=ax.transAxes, ha="center", va="center",
                color="#666666")
    if ax.get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
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


def data_key(kind: str, data: object) -> str:
    """A cache key naming a plot by a digest of the data it is drawn from."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:40]
    return f"catalog:plot:{kind}:{digest}"


def cached_svg(key: str, render: Callable[[], str]) -> str:
    """The SVG under ``key``, rendering (and storing) it on a miss."""
    svg = cache.get(key)
    if svg is None:
        svg = render()
        cache.set(key, svg, PLOT_CACHE_SECONDS)
    return svg
