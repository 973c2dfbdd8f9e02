"""The server-rendered SVG charts (swf_lite.pages.charts): well-formed, accessible, CSP-safe, escaped, bounded."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from swf_lite.pages.charts import (
    LEVEL_COLORS,
    MAX_BARS,
    bucket_counts,
    bucket_phrase,
    bucket_width,
    format_age,
    freshness_chart,
    freshness_color,
    nice_ticks,
    rate_chart,
    stacked_rate_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
NOW = dt.datetime(2024, 5, 1, 12, 0, 0)
EVIL = "<script>alert(1)</script>"
GREEN, AMBER, RED = "#3a9a5b", "#e0a030", "#d0453c"


def spread(n: int, span: dt.timedelta, end: dt.datetime = NOW) -> list[dt.datetime]:
    """n times evenly spread over (end - span, end]."""
    return [end - span * (i / n) for i in range(n)]


def classes(el: ET.Element) -> set[str]:
    return set(el.get("class", "").split())


def find_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter() if cls in classes(el)]


def texts(root: ET.Element, cls: str) -> list[str]:
    return ["".join(el.itertext()) for el in find_class(root, cls)]


def parse(svg: str) -> ET.Element:
    """Parse and check what every chart must have."""
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == SVG + "svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 \d+ [\d.]+", root.get("viewBox", ""))
    assert root[0].tag == SVG + "title" and root[0].text
    assert texts(root, "chart-title") and texts(root, "chart-title")[0]
    assert len(texts(root, "chart-axis-label")) >= 2
    assert find_class(root, "chart-axis")
    ticks = find_class(root, "chart-ticks")
    assert ticks and list(ticks[0])  # tick labels
    # CSP: no inline style, no script or style element
    assert "style=" not in svg
    for el in root.iter():
        assert "style" not in el.attrib
        assert el.tag not in (SVG + "script", SVG + "style", "script", "style")
        assert not any(k.startswith("on") for k in el.attrib)
    return root


def bar_total(root: ET.Element, unit: str = "files") -> int:
    """Sum of the counts the bars' tooltips report."""
    total = 0
    for bar in find_class(root, "chart-bar"):
        title = bar.find(SVG + "title")
        assert title is not None and title.text
        match = re.search(rf": ([\d,]+) {unit}$", title.text)
        assert match, title.text
        total += int(match.group(1).replace(",", ""))
    return total


# -- buckets -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "span, width",
    [
        (dt.timedelta(0), 60),
        (dt.timedelta(minutes=10), 60),
        (dt.timedelta(hours=2), 60),
        (dt.timedelta(hours=2, seconds=1), 300),
        (dt.timedelta(hours=5), 300),
        (dt.timedelta(hours=10), 300),
        (dt.timedelta(hours=30), 900),
        (dt.timedelta(days=3), 3600),
        (dt.timedelta(days=30), 21600),
        (dt.timedelta(days=120), 86400),
        (dt.timedelta(days=240), 2 * 86400),
    ],
)
def test_bucket_width_follows_the_span(span, width):
    assert bucket_width(span.total_seconds()) == width
    assert span.total_seconds() / width <= MAX_BARS


@pytest.mark.parametrize(
    "width, phrase",
    [
        (60, "minute"),
        (300, "5 min"),
        (900, "15 min"),
        (3600, "hour"),
        (21600, "6 h"),
        (86400, "day"),
        (172800, "2 days"),
    ],
)
def test_bucket_phrase(width, phrase):
    assert bucket_phrase(width) == phrase


def test_bucket_counts():
    start = dt.datetime(2024, 5, 1, 10, 0)
    times = [start, start + dt.timedelta(seconds=59), start + dt.timedelta(seconds=60), start + dt.timedelta(minutes=4)]
    assert bucket_counts(times, 60, start) == [2, 1, 0, 0, 1]
    assert bucket_counts(times, 60, start, n=2) == [2, 1]  # past the window: not counted
    assert bucket_counts(times, 60, start + dt.timedelta(minutes=1)) == [1, 0, 0, 1]  # before start: not counted
    assert bucket_counts([], 60, start) == []
    assert bucket_counts([], 60, start, n=3) == [0, 0, 0]
    many = spread(10_000, dt.timedelta(hours=5))
    counts = bucket_counts(many, 300, min(many))
    assert sum(counts) == 10_000 and len(counts) <= 61
    aware = [t.replace(tzinfo=dt.timezone(dt.timedelta(hours=2))) for t in times]  # 2 h ahead of UTC
    assert bucket_counts(aware, 3600, start - dt.timedelta(hours=2)) == [4]
    with pytest.raises(ValueError):
        bucket_counts(times, 0, start)


@pytest.mark.parametrize(
    "top, ticks",
    [(0, [0]), (1, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]), (96, [0, 20, 40, 60, 80, 100])],
)
def test_nice_ticks(top, ticks):
    assert nice_ticks(top) == ticks


def test_nice_ticks_are_round_and_cover():
    for top in (11, 99, 101, 1234, 10_000, 987_654):
        ticks = nice_ticks(top)
        step = ticks[1]
        assert ticks[-1] >= top and 3 <= len(ticks) <= 11
        assert str(step).rstrip("0") in ("1", "2", "5")


# -- rate chart ---------------------------------------------------------------------------------------------
def test_rate_chart_empty():
    for svg in (rate_chart("STF files per minute", []), rate_chart("STF files per minute", [], now=NOW)):
        root = parse(svg)
        assert find_class(root, "chart-bar") == []
        assert texts(root, "chart-empty") == ["no data yet"]
        assert "time (UTC)" in texts(root, "chart-axis-label")
        assert "files per minute" in texts(root, "chart-axis-label")
        assert "STF files per minute" in texts(root, "chart-title")


def test_rate_chart_one_point():
    root = parse(rate_chart("STF files", [NOW]))
    bars = find_class(root, "chart-bar")
    assert len(bars) == 1 and bar_total(root) == 1
    assert float(bars[0].get("height", "0")) > 0
    assert texts(root, "chart-empty") == []
    # a short span is drawn as the last 30 minutes, labelled HH:MM
    tick_labels = ["".join(t.itertext()) for t in find_class(root, "chart-ticks")[0]]
    assert "12:00" in tick_labels and "11:40" in tick_labels


def test_rate_chart_10k_points_is_bucketed_and_small():
    times = spread(10_000, dt.timedelta(hours=5))
    svg = rate_chart("STF files per minute", times, now=NOW)
    root = parse(svg)
    bars = find_class(root, "chart-bar")
    assert 50 <= len(bars) <= MAX_BARS + 1
    assert bar_total(root) == 10_000
    assert len(svg.encode()) < 60_000
    assert "files per 5 min" in texts(root, "chart-axis-label")


@pytest.mark.parametrize(
    "span, label, tick",
    [
        (dt.timedelta(minutes=10), "files per minute", re.compile(r"\d\d:\d\d$")),
        (dt.timedelta(hours=5), "files per 5 min", re.compile(r"\d\d:\d\d$")),
        (dt.timedelta(days=3), "files per hour", re.compile(r"\d\d-\d\d( \d\d:\d\d)?$")),
    ],
)
def test_rate_chart_bucket_choice(span, label, tick):
    times = spread(600, span)
    root = parse(rate_chart("files", times))
    assert label in texts(root, "chart-axis-label")
    assert bar_total(root) == 600
    bars = find_class(root, "chart-bar")
    expected = sum(1 for c in bucket_counts(times, bucket_width(span.total_seconds()), min(times)) if c)
    assert len(bars) in (expected, expected + 1)  # alignment to the bucket grid may split one more bucket
    tick_labels = ["".join(t.itertext()) for t in find_class(root, "chart-ticks")[0]]
    time_labels = [t for t in tick_labels if not t.replace(",", "").isdigit()]
    assert time_labels and all(tick.match(t) for t in time_labels)


def test_rate_chart_counts_per_bucket():
    start = dt.datetime(2024, 5, 1, 11, 30)
    times = [start] * 3 + [start + dt.timedelta(minutes=5, seconds=30)] * 7 + [NOW]
    root = parse(rate_chart("files", times, unit="files"))
    counts = sorted(bar_total_single(b) for b in find_class(root, "chart-bar"))
    assert counts == [1, 3, 7]
    # the tallest bar is the 7
    heights = {bar_total_single(b): float(b.get("height", "0")) for b in find_class(root, "chart-bar")}
    assert heights[7] > heights[3] > heights[1] > 0


def bar_total_single(bar: ET.Element) -> int:
    title = bar.find(SVG + "title")
    assert title is not None and title.text
    return int(title.text.rsplit(": ", 1)[1].split()[0].replace(",", ""))


def test_rate_chart_escapes_data():
    svg = rate_chart(EVIL, [NOW], unit='fi"les<')
    root = parse(svg)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert root[0].text == EVIL  # the parsed title is the original text
    assert "fi&quot;les&lt;" in svg
    assert "aria-label" in svg and EVIL in root.get("aria-label", "")


def test_rate_chart_survives_control_characters_and_aware_times():
    aware = NOW.replace(tzinfo=dt.timezone.utc)
    root = parse(rate_chart("bad \x00\x1b title", [aware], now=aware))
    assert bar_total(root) == 1


# -- stacked chart -------------------------------------------------------------------------------------------
def stacked_series(n: int, span: dt.timedelta) -> dict[str, list[dt.datetime]]:
    levels = list(LEVEL_COLORS)
    series: dict[str, list[dt.datetime]] = {level: [] for level in levels}
    for i, t in enumerate(spread(n, span)):
        series[levels[(i * 7) % 5 if i % 3 else 1]].append(t)
    return series


def hit_counts(root: ET.Element, unit: str = "logs") -> list[tuple[int, dict[str, int]]]:
    """(total, {series: count}) per non-empty bucket, from the hit rects' tooltips."""
    out = []
    for rect in find_class(root, "chart-hits")[0]:
        title = rect.find(SVG + "title")
        assert title is not None and title.text
        m = re.search(rf": ([\d,]+) {unit} \((.*)\)$", title.text)
        assert m, title.text
        parts = dict(p.rsplit(" ", 1) for p in m.group(2).split(", "))
        out.append((int(m.group(1).replace(",", "")), {k: int(v.replace(",", "")) for k, v in parts.items()}))
    return out


def segments(root: ET.Element) -> dict[str, int]:
    """Rectangles drawn per series (one sub-path per non-empty bucket)."""
    return {
        next(c for c in classes(p) if c.startswith("chart-series-") and not c[13:].isdigit()): p.get("d", "").count("M")
        for p in find_class(root, "chart-series")
        if p.tag == SVG + "path"
    }


def test_stacked_chart_sums_per_bucket():
    series = stacked_series(10_000, dt.timedelta(hours=2))
    svg = stacked_rate_chart("Log volume by level", series)
    root = parse(svg)
    assert len(svg.encode()) < 60_000
    buckets = hit_counts(root)
    assert 100 <= len(buckets) <= MAX_BARS + 1
    assert sum(total for total, _ in buckets) == 10_000
    for total, parts in buckets:
        assert sum(parts.values()) == total
    for level, times in series.items():
        assert sum(parts.get(level, 0) for _, parts in buckets) == len(times)
    # one rectangle per non-empty (bucket, series), no element per point
    drawn = segments(root)
    for level in series:
        assert drawn[f"chart-series-{level.lower()}"] == sum(1 for _, parts in buckets if parts.get(level))
    assert len(list(root.iter())) < 400
    assert "logs per minute" in texts(root, "chart-axis-label")
    legend = " ".join(texts(root, "chart-legend-item"))
    for level, times in series.items():
        assert f"{level} {len(times):,}" in legend


def test_stacked_chart_level_colours():
    root = parse(stacked_rate_chart("logs", {level: [NOW] for level in LEVEL_COLORS}))
    fills = {p.get("class", "").split()[-1]: p.get("fill") for p in root.iter(SVG + "path")}
    assert fills == {f"chart-series-{level.lower()}": color for level, color in LEVEL_COLORS.items()}
    assert LEVEL_COLORS["DEBUG"] == "#9e9e9e" and LEVEL_COLORS["CRITICAL"] == "#8b1a1a"


def test_stacked_chart_empty_and_one_point():
    root = parse(stacked_rate_chart("logs", {"INFO": [], "ERROR": []}))
    assert texts(root, "chart-empty") == ["no data yet"]
    assert list(root.iter(SVG + "path")) == []
    root = parse(stacked_rate_chart("logs", {}))
    assert texts(root, "chart-empty") == ["no data yet"]
    root = parse(stacked_rate_chart("logs", {"INFO": [], "ERROR": [NOW]}))
    assert hit_counts(root) == [(1, {"ERROR": 1})]
    assert segments(root) == {"chart-series-error": 1}


def test_stacked_chart_escapes_and_validates_colours():
    svg = stacked_rate_chart(EVIL, {EVIL: [NOW], "INFO": [NOW]}, colors={EVIL: '"/><script>x', "INFO": "#123456"})
    root = parse(svg)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    fills = [p.get("fill") for p in root.iter(SVG + "path")]
    assert fills[1] == "#123456" and fills[0] is not None and fills[0].startswith("#")


def test_stacked_chart_merges_many_series():
    series = {f"agent-{i}": spread(500, dt.timedelta(hours=20)) for i in range(20)}
    svg = stacked_rate_chart("logs by agent", series, unit="logs")
    root = parse(svg)
    assert len(svg.encode()) < 60_000
    assert len(list(root.iter(SVG + "path"))) == 10
    assert any(t.startswith("other (11 series) 5,500") for t in texts(root, "chart-legend-item"))
    assert sum(total for total, _ in hit_counts(root)) == 10_000


# -- freshness chart -----------------------------------------------------------------------------------------------
def rows(root: ET.Element) -> dict[str, ET.Element]:
    """Freshness rows by agent name (from each row's tooltip)."""
    out = {}
    for row in find_class(root, "chart-row"):
        title = row.find(SVG + "title")
        assert title is not None and title.text
        out[title.text.split(": ")[0]] = row
    return out


def test_freshness_colours_and_values():
    items = [
        ("a", 12.0),
        ("b", 59.9),
        ("c", 60.0),
        ("d", 240.0 - 61),
        ("e", 180.0),
        ("f", 240.0),
        ("g", 3 * 3600.0),
        ("h", 3 * 86400.0),
        ("i", None),
    ]
    root = parse(freshness_chart("Agent heartbeats", items, stale_after=180, now_label="as of 12:00 UTC"))
    by_name = rows(root)
    assert list(by_name) == [name for name, _ in items]
    expected = {
        "a": (GREEN, "chart-fresh", "12 s"),
        "b": (GREEN, "chart-fresh", "60 s"),
        "c": (AMBER, "chart-aging", "60 s"),
        "d": (AMBER, "chart-aging", "2 min"),
        "e": (RED, "chart-stale", "3 min"),
        "f": (RED, "chart-stale", "4 min"),
        "g": (RED, "chart-stale", "3 h"),
        "h": (RED, "chart-stale", "3 d"),
        "i": (RED, "chart-never", "never"),
    }
    widths = {}
    for name, (color, cls, value) in expected.items():
        row = by_name[name]
        bar = find_class(row, "chart-bar")[0]
        assert bar.get("fill") == color, name
        assert cls in classes(row), name
        assert texts(row, "chart-value") == [value], name
        widths[name] = float(bar.get("width", "0"))
        assert bool(find_class(row, "chart-capped")) == (name in ("g", "h")), name  # beyond 2 × stale_after
    assert texts(by_name["g"], "chart-capped") == ["›"]
    assert widths["a"] < widths["c"] < widths["e"] < widths["f"] < widths["g"] == widths["h"] == widths["i"]
    axis = " ".join(texts(root, "chart-axis-label"))
    assert "seconds since last heartbeat" in axis
    assert texts(root, "chart-subtitle") == ["as of 12:00 UTC"]
    assert "6 min" in ["".join(t.itertext()) for t in find_class(root, "chart-ticks")[0]]


def test_freshness_color_thresholds():
    assert freshness_color(0, 90) == GREEN
    assert freshness_color(29.99, 90) == GREEN
    assert freshness_color(30, 90) == AMBER
    assert freshness_color(89.9, 90) == AMBER
    assert freshness_color(90, 90) == RED
    assert freshness_color(None, 90) == RED
    assert freshness_color(float("inf"), 90) == RED


@pytest.mark.parametrize(
    "seconds, text",
    [(None, "never"), (-3, "0 s"), (0.4, "0 s"), (12, "12 s"), (119, "119 s"), (240, "4 min"), (299, "4 min")]
    + [(3 * 3600, "3 h"), (47 * 3600, "47 h"), (3 * 86400, "3 d"), (float("nan"), "never")],
)
def test_format_age(seconds, text):
    assert format_age(seconds) == text


def test_freshness_empty_one_and_many():
    root = parse(freshness_chart("Agents", [], stale_after=180))
    assert texts(root, "chart-empty") == ["no data yet"] and find_class(root, "chart-row") == []
    root = parse(freshness_chart("Agents", [("only", 5.0)], stale_after=180))
    assert len(find_class(root, "chart-row")) == 1 and texts(root, "chart-empty") == []
    items = [(f"agent-{i}", float(i * 7)) for i in range(60)] + [(f"dead-{i}", None) for i in range(9_940)]
    svg = freshness_chart("Agents", items, stale_after=180)
    root = parse(svg)
    assert len(find_class(root, "chart-row")) == 50
    assert texts(root, "chart-more") == ["+9,950 more"]
    assert len(svg.encode()) < 60_000
    with pytest.raises(ValueError):
        freshness_chart("Agents", [], stale_after=0)


def test_freshness_escapes_names():
    svg = freshness_chart(EVIL, [(EVIL, 3.0), ('a"b&c', None)], stale_after=60, now_label=EVIL)
    root = parse(svg)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert "a&quot;b&amp;c" in svg
    assert 'a"b&c' in texts(root, "chart-label")
