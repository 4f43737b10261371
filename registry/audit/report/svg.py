"""Inline SVG for reports: the lineage picture and small metric charts.

Laid out by hand in three columns (bases, versions, datasets) so no Graphviz or other
system binary is needed and the HTML stays one self-contained file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["lineage_svg", "metric_svg", "nice_axis"]

_BOX_W, _BOX_H, _GAP = 230, 42, 14
_COLUMNS = {"base": 16, "version": 316, "dataset": 616}
_COLORS = {"base": "#e8f0fe", "version": "#fef7e0", "dataset": "#e6f4ea"}
_STROKES = {"base": "#1a73e8", "version": "#b06000", "dataset": "#137333"}
_TITLES = {"base": "base model", "version": "versions", "dataset": "datasets"}


def _clip(text: str, n: int = 30) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]


def lineage_svg(lineage: Mapping[str, Any], label: str) -> str:
    """base -> versions -> datasets (and dashed parent -> child arcs between versions)."""
    nodes: Sequence[Mapping[str, Any]] = lineage["nodes"]
    positions: dict[str, tuple[int, int]] = {}
    counts = {"base": 0, "version": 0, "dataset": 0}
    for node in nodes:
        kind = node["kind"]
        positions[node["id"]] = (_COLUMNS[kind], 36 + counts[kind] * (_BOX_H + _GAP))
        counts[kind] += 1
    height = 36 + max(counts.values(), default=1) * (_BOX_H + _GAP) + 8
    width = _COLUMNS["dataset"] + _BOX_W + 16
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(label)}</title>",
    ]
    for kind, x in _COLUMNS.items():
        parts.append(f'<text x="{x}" y="20" font-weight="bold" fill="#444">{_TITLES[kind]}</text>')
    for edge in lineage["edges"]:
        if edge["from"] not in positions or edge["to"] not in positions:
            continue
        (x1, y1), (x2, y2) = positions[edge["from"]], positions[edge["to"]]
        if edge["kind"] == "parent":  # an arc on the right of the versions column
            sx, sy, ey = x1 + _BOX_W, y1 + _BOX_H / 2, y2 + _BOX_H / 2
            bulge = sx + 36
            parts.append(
                f'<path d="M{sx},{sy} C{bulge},{sy} {bulge},{ey} {sx},{ey}" fill="none" stroke="#b06000" '
                'stroke-dasharray="4 3" marker-end="url(#arrow)"/>'
            )
            continue
        sx, sy, ex, ey = x1 + _BOX_W, y1 + _BOX_H / 2, x2, y2 + _BOX_H / 2
        mid = (sx + ex) / 2
        parts.append(
            f'<path d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}" fill="none" stroke="#888" marker-end="url(#arrow)"/>'
        )
    parts.insert(
        2,
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>',
    )
    for node in nodes:
        x, y = positions[node["id"]]
        kind = node["kind"]
        parts.append(
            f'<g class="node {kind}"><rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="{_COLORS[kind]}" stroke="{_STROKES[kind]}"/>'
            f'<text x="{x + 8}" y="{y + 17}" font-weight="bold">{escape(_clip(str(node["label"])))}</text>'
            f'<text x="{x + 8}" y="{y + 33}" fill="#555">{escape(_clip(str(node["detail"]), 34))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def nice_axis(values: Sequence[float], ticks: int = 4) -> list[float]:
    """Round tick values covering ``values``, from 0 when they are all on one side of it.

    Starting at 0 keeps small differences small (0.90 -> 0.92 is not drawn as a cliff); the
    step is 1, 2, 2.5 or 5 times a power of ten, about ``ticks`` steps in all.
    """
    low, high = min(values), max(values)
    if low >= 0:
        low = 0.0
    elif high <= 0:
        high = 0.0
    if high == low:
        high = low + 1.0
    raw = (high - low) / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def metric_svg(metric: str, points: Sequence[Mapping[str, Any]]) -> str:
    """A line chart of one metric's latest value per version, with its policy threshold if any.

    The y axis is labelled with round values from 0 (or the rounded floor of negative values)
    and the x axis with the versions, so the chart shows the differences at their true size.
    """
    width, height = 360, 190
    left, right, top, bottom = 46, 34, 26, 40
    values = [float(p["value"]) for p in points]
    threshold = next((p["threshold"] for p in points if p.get("threshold")), None)
    limits = [float(v) for v in ((threshold or {}).get("min"), (threshold or {}).get("max")) if v is not None]
    axis = nice_axis([*values, *limits])
    low, high = axis[0], axis[-1]

    def x(i: int) -> float:
        return left + (width - left - right) * ((i + 0.5) / len(points))

    def y(v: float) -> float:
        return height - bottom - (height - top - bottom) * ((v - low) / (high - low))

    label = f"{metric} across versions, y axis {low:g} to {high:g}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(label)}</title>",
        f'<text x="{left}" y="16" font-weight="bold">{escape(metric)}</text>',
    ]
    for tick in axis:
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" stroke="#e3e3e3"/>'
            f'<text class="tick y" x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{tick:g}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>'
        f'<text class="axis-label" x="{(left + width - right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        'fill="#555">version</text>'
    )
    for bound in ("min", "max"):
        value = (threshold or {}).get(bound)
        if value is not None:
            parts.append(
                f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" stroke="#d93025" stroke-dasharray="5 3"/>'
                f'<text x="{width - right + 2}" y="{y(value) + 4:.1f}" fill="#d93025">{bound}</text>'
            )
    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#1a73e8" stroke-width="2"/>')
    every = max(1, math.ceil(len(points) * 28 / (width - left - right)))  # labels at least 28 px apart
    for i, (point, value) in enumerate(zip(points, values, strict=True)):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.5" fill="#1a73e8"><title>v{point["version"]}: {value:g}</title></circle>'
        )
        if i % every == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{y(value) - 7:.1f}" text-anchor="middle">{value:g}</text>'
                f'<text class="tick x" x="{x(i):.1f}" y="{height - bottom + 15}" text-anchor="middle" fill="#555">'
                f"v{point['version']}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
