"""Inline SVG for reports: the lineage picture and small metric charts.

Laid out by hand in three columns (bases, versions, datasets) so no Graphviz or other
system binary is needed and the HTML stays one self-contained file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["lineage_svg", "metric_svg"]

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


def metric_svg(metric: str, points: Sequence[Mapping[str, Any]]) -> str:
    """A line chart of one metric's latest value per version, with its policy threshold if any."""
    width, height, pad = 340, 150, 34
    values = [float(p["value"]) for p in points]
    threshold = next((p["threshold"] for p in points if p.get("threshold")), None)
    limits = ((threshold or {}).get("min"), (threshold or {}).get("max"))
    bounds = [*values, *(float(v) for v in limits if v is not None)]
    low, high = min(bounds), max(bounds)
    if high == low:
        low, high = low - 0.5, high + 0.5
    span = high - low
    low, high = low - span * 0.1, high + span * 0.1

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(len(points) - 1, 1))

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * ((v - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(metric)} across versions" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(metric)} across versions</title>",
        f'<text x="{pad}" y="16" font-weight="bold">{escape(metric)}</text>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
    ]
    for bound in ("min", "max"):
        value = (threshold or {}).get(bound)
        if value is not None:
            parts.append(
                f'<line x1="{pad}" y1="{y(value):.1f}" x2="{width - pad}" y2="{y(value):.1f}" stroke="#d93025" stroke-dasharray="5 3"/>'
                f'<text x="{width - pad + 2}" y="{y(value) + 4:.1f}" fill="#d93025">{bound}</text>'
            )
    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#1a73e8" stroke-width="2"/>')
    for i, (point, value) in enumerate(zip(points, values, strict=True)):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.5" fill="#1a73e8"/>'
            f'<text x="{x(i):.1f}" y="{y(value) - 7:.1f}" text-anchor="middle">{value:g}</text>'
            f'<text x="{x(i):.1f}" y="{height - pad + 15}" text-anchor="middle" fill="#555">v{point["version"]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
