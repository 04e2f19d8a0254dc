"""The plotting module: frontier computation, SVG output of both plots, caching by a key of the data."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from registry.catalog.plots import (
    FrontierPoint,
    RunCurve,
    cached_svg,
    curves_svg,
    data_key,
    frontier,
    frontier_spec,
    frontier_svg,
)


def _points():
    return [
        FrontierPoint("dense-ish", 0.5, 0.60, {"reinit": 0.58, "random_mask": 0.57}),
        FrontierPoint("sparse-good", 0.02, 0.61, {"reinit": 0.45, "random_mask": 0.40}),
        FrontierPoint("sparse-bad", 0.03, 0.30, {"reinit": 0.28}),
        FrontierPoint("sparsest", 0.005, 0.35, {}),
    ]


def test_frontier_keeps_tickets_no_sparser_ticket_beats():
    names = [p.name for p in frontier(_points())]
    # sparsest first; 'sparse-bad' and 'dense-ish' are beaten by the sparser 'sparse-good'.
    assert names == ["sparsest", "sparse-good"]


def test_frontier_svg_is_svg_with_the_baseline_and_the_controls():
    svg = frontier_svg(_points(), baseline=0.62, task="mnist1d")
    root = ET.fromstring(svg.encode())
    assert root.tag.endswith("svg")
    # svg.fonttype=none keeps the text as text, so the legend and labels are searchable
    assert "dense 62.0%" in svg  # no measured dense parent: the task's baseline
    assert "random re-init" in svg and "random mask" in svg
    assert "weights remaining (density, %, log scale)" in svg
    # ticks at the lottery-ticket papers' densities, no minor-tick clutter
    for tick in ("100%", "51.2%", "21%", "7%", "3.6%", "1.9%", "0.5%"):
        assert f">{tick}<" in svg, tick
    assert "mnist1d: verified tickets (4)" in svg


def test_frontier_svg_draws_the_measured_dense_parents_and_a_legend_only_for_what_is_drawn():
    points = [FrontierPoint("a", 0.2, 0.6, {"reinit": 0.5}, dense=0.62, outcome="winning"),
              FrontierPoint("b", 0.05, 0.55, {}, dense=0.64, outcome="verified_not_winning")]
    svg = frontier_svg(points, baseline=0.1, task="t")
    assert "dense 63.0%" in svg  # the median of the measured parents, not the recorded baseline
    assert "dense parent (own init, all weights)" in svg
    assert "winning ticket" in svg and "verified, not winning" in svg
    assert "random mask, same layer densities" not in svg  # no such control drawn: no legend entry
    narrow = frontier_svg(points, baseline=0.1, task="t", wide=False)
    assert 'width="302.4pt"' in narrow  # 4.2 in: drawn for a phone, not shrunk


def test_frontier_spec_caps_points_and_keeps_the_frontier():
    many = [FrontierPoint(f"t{i}", 0.001 + i / 5000, 0.5 + (i % 7) / 100, {"reinit": 0.4}) for i in range(2500)]
    spec = frontier_spec(many, baseline=0.6, task="t")
    rows = next(layer for layer in spec["layer"] if layer.get("mark", {}).get("type") == "point")["data"]["values"]
    assert len(rows) == 2000  # tickets only, no controls at this size
    names = {r["ticket"] for r in rows}
    assert all(p.name in names for p in frontier(many))
    assert json.dumps(spec)  # JSON-able


def test_frontier_svg_without_tickets_says_so():
    svg = frontier_svg([], baseline=None, task="cifar10")
    assert "no verified tickets yet" in svg


def test_frontier_svg_is_deterministic_and_rasterises_many_points():
    assert frontier_svg(_points(), baseline=0.62, task="t") == frontier_svg(_points(), baseline=0.62, task="t")
    many = [FrontierPoint(f"t{i}", 0.001 + i / 2000, 0.5, {"reinit": 0.4}) for i in range(1000)]
    svg = frontier_svg(many, baseline=0.6, task="t")
    assert "<image" in svg  # the scatter layers are an embedded raster, not 2,000 paths
    assert len(svg) < 600_000


def test_curves_svg_has_one_legend_entry_per_role():
    curves = [RunCurve("ticket", s, [0, 100, 200], [0.1, 0.5, 0.6]) for s in range(3)]
    curves += [RunCurve("reinit", 0, [0, 100, 200], [0.1, 0.3, 0.4]), RunCurve("supermask", 0, [], [])]
    svg = curves_svg(curves, title="test accuracy per run")
    ET.fromstring(svg.encode())
    assert svg.count("ticket (own init + mask)") == 1
    assert "same mask, random re-init" in svg
    assert "on untrained init" not in svg  # no curve, no legend entry


def test_cached_svg_renders_once_per_data_key():
    calls = []

    def render():
        calls.append(1)
        return "<svg/>"

    key = data_key("frontier", {"task": "mnist1d", "n": 3})
    assert key == data_key("frontier", {"n": 3, "task": "mnist1d"})
    assert key != data_key("frontier", {"task": "mnist1d", "n": 4})
    assert cached_svg(key, render) == "<svg/>"
    assert cached_svg(key, render) == "<svg/>"
    assert len(calls) == 1
