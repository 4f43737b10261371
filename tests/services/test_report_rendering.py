"""How the HTML and Markdown audit reports read: absent values left out (never "None"), timestamps,
digests and refs on one line, a metric chart with labelled axes that starts at 0."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from registry.audit.report.svg import metric_svg
from reportflow import regulated_workflow

_RENDERED: dict[str, str] = {}


@pytest.fixture
def backend() -> SimpleNamespace:
    """The renderings are functions of the report's data: SQLite is enough (test_report.py covers both)."""
    return SimpleNamespace(name="sqlite", db_url=None)


@pytest.fixture
def rendered(request: pytest.FixtureRequest) -> dict[str, str]:
    """The HTML and Markdown reports of the scripted regulated workflow, built once for this module."""
    if not _RENDERED:
        team, _ = regulated_workflow(
            request.getfixturevalue("team"), request.getfixturevalue("tiny_models"), request.getfixturevalue("tmp_path")
        )
        alice = team("alice")
        _RENDERED.update(html=alice.audit_report(format="html").content, md=alice.audit_report(format="md").content)
    return _RENDERED


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_absent_values_are_left_out_never_printed_as_none_or_dashes(rendered: dict[str, str], fmt: str) -> None:
    text = rendered[fmt]
    assert "None" not in text, [line for line in text.splitlines() if "None" in line][:3]
    for phrase in ("double quant -", "compute -", "device -", "- / -", "min=", "max=", "dtype -"):
        assert phrase not in text, phrase
    assert not re.search(r"(?<!`)``(?!`)", text)  # no empty code span where a digest is absent
    assert '<span class="mono nowrap"></span>' not in text
    assert "≥ 0.85" in text  # the regulated policy's accuracy threshold, as people write it
    # a push that said only nf4 records bitsandbytes' defaults, and the report shows them
    assert "nf4 (no double quant, compute float32)" in text
    assert "device cpu (" in text and "nf4 (double quant, compute float32)" in text  # what the load ran on


class _Cells(HTMLParser):
    """Text nodes outside SVG, each with the classes of the elements around it."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.texts: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "meta", "circle", "line", "path", "rect", "polyline"):
            self.stack.append((tag, dict(attrs).get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if data.strip() and not any(tag == "svg" for tag, _ in self.stack):
            self.texts.append((data.strip(), list(self.stack)))


_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[^ ]*( UTC)?")
_DIGEST = re.compile(r"(sha256:)?[0-9a-f]{12,64}…?")
_REF = re.compile(r"(support|chat):\d+")


def test_timestamps_digests_and_refs_in_html_tables_never_wrap(rendered: dict[str, str]) -> None:
    parser = _Cells()
    parser.feed(rendered["html"])
    seen = {"time": 0, "digest": 0, "ref": 0}
    for text, stack in parser.texts:
        kind = next((k for k, p in (("time", _TIME), ("digest", _DIGEST), ("ref", _REF)) if p.fullmatch(text)), None)
        if kind is None or not any(tag == "td" for tag, _ in stack):
            continue
        seen[kind] += 1
        assert any("nowrap" in classes.split() for _, classes in stack), (kind, text, stack)
    assert seen["time"] > 20 and seen["digest"] > 20 and seen["ref"] > 5, seen
    assert ".nowrap { white-space: nowrap; }" in rendered["html"]
    assert "word-break: break-all" not in rendered["html"]  # which broke digests at any character


def test_a_shortened_digest_keeps_the_full_value_in_its_title(rendered: dict[str, str]) -> None:
    shortened = re.findall(r'<span class="mono nowrap" title="([^"]+)">([0-9a-f]{12})…</span>', rendered["html"])
    assert shortened and all(full.removeprefix("sha256:").startswith(short) for full, short in shortened)
    times = re.findall(r'<time class="nowrap" datetime="([^"]+)" title="[^"]+">([^<]+)</time>', rendered["html"])
    assert times and all(shown.replace(" ", "T").startswith(at[:19]) for at, shown in times)


def test_the_metric_chart_labels_both_axes_and_starts_at_zero(rendered: dict[str, str]) -> None:
    chart = re.search(r'<svg [^>]*class="chart".*?</svg>', rendered["html"]).group(0)
    y_ticks = [float(t) for t in re.findall(r'<text class="tick y"[^>]*>([^<]+)</text>', chart)]
    x_ticks = re.findall(r'<text class="tick x"[^>]*>([^<]+)</text>', chart)
    assert len(y_ticks) >= 3 and y_ticks[0] == 0 and y_ticks == sorted(y_ticks)
    assert y_ticks[-1] >= 0.94  # support's accuracy went 0.88, 0.91, 0.94: all inside the axis
    assert x_ticks == ["v1", "v2", "v3"] and ">version</text>" in chart
    assert "<script" not in chart and "href" not in chart


def test_a_small_difference_is_drawn_at_its_true_size() -> None:
    from registry.audit.report.svg import nice_axis

    svg = metric_svg("accuracy", [{"version": 1, "value": 0.90, "threshold": None}, {"version": 2, "value": 0.92}])
    ys = [float(y) for y in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"', svg)]
    plot_height = 190 - 26 - 40
    assert abs(ys[0] - ys[1]) < 0.05 * plot_height  # a 2% change moves the line by about 2% of the height
    assert nice_axis([0.90, 0.92]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_axis([-0.3, 0.2]) == [-0.4, -0.2, 0.0, 0.2]
    assert nice_axis([12.3, 11.8]) == [0, 5, 10, 15]
    assert nice_axis([0.0, 0.0]) == [0.0, 0.25, 0.5, 0.75, 1.0]
