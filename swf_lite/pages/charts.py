"""Server-rendered SVG charts: pure functions from data to one ``<svg>`` string (standard library only).

The charts are embedded inline in pages served with a strict Content-Security-Policy, so the markup
uses SVG presentation attributes and ``chart-*`` classes only: never a ``style`` attribute, a
``<style>`` or a ``<script>`` element. Every text that can come from data is XML-escaped (and
characters XML cannot carry are replaced). Times are naive UTC datetimes (aware ones are converted).
Many points are counted into time buckets, so the markup stays small whatever the number of points:
at most ~121 bars, a few dozen KB.

Every chart is ``<svg class="chart chart-<kind>" viewBox=... width="100%" role="img" aria-label=...>``
whose first child is ``<title>``, then (classes the page stylesheet may style):

- ``chart-title`` (visible title), ``chart-subtitle`` (a summary, top right);
- ``chart-grid`` (grid lines), ``chart-axis`` (axis lines), ``chart-ticks`` (a ``<g>`` of tick labels),
  ``chart-axis-label`` (the x and y axis labels), ``chart-empty`` (the "no data yet" note);
- rate chart: ``chart-bars`` (a ``<g>``) of ``chart-bar`` rects, each with a ``<title>`` tooltip;
- stacked chart: one ``<path class="chart-series chart-series-<n> chart-series-<slug>">`` per series
  (one rectangle sub-path per non-empty bucket), ``chart-hits`` (a ``<g>`` of invisible full-height
  rects carrying each bucket's tooltip), ``chart-legend`` of ``chart-legend-item`` groups;
- freshness chart: ``chart-row`` groups (with ``chart-fresh``, ``chart-aging``, ``chart-stale`` or
  ``chart-never``), each holding a ``chart-label`` text, a ``chart-bar`` rect, a ``chart-value``
  text and, for bars cut at the scale's cap, a ``chart-capped`` "›" marker; ``chart-threshold`` (the
  stale line) and ``chart-more`` ("+N more").
"""

from __future__ import annotations

import collections
import datetime as dt
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "LEVEL_COLORS",
    "bucket_counts",
    "bucket_phrase",
    "bucket_width",
    "format_age",
    "freshness_chart",
    "freshness_color",
    "nice_ticks",
    "rate_chart",
    "stacked_rate_chart",
]

# -- palette: calm colours that read on white ------------------------------------------------------
LEVEL_COLORS = {
    "DEBUG": "#9e9e9e",
    "INFO": "#3b75af",
    "WARNING": "#e0a030",
    "ERROR": "#d0453c",
    "CRITICAL": "#8b1a1a",
}
PALETTE = ("#3b75af", "#e0a030", "#3a9a5b", "#8e6bb0", "#d0453c", "#5aa6c8", "#b5835a", "#c76da8", "#7f8c3a")
OTHER_COLOR = "#b0b0b0"
BAR_COLOR = "#3b75af"
FRESH_COLOR, AGING_COLOR, STALE_COLOR = "#3a9a5b", "#e0a030", "#d0453c"
TEXT_COLOR, MUTED_COLOR, AXIS_COLOR, GRID_COLOR = "#333333", "#6b6b6b", "#8a8a8a", "#e6e6e6"

# -- geometry (viewBox units; the SVG scales to its container) ----------------------------------------
WIDTH = 720
FONT = 12
CHAR_W = 6.6  # average glyph width at FONT px, for layout estimates
TITLE_CHARS = 80
TIME_LEFT, TIME_RIGHT, TIME_TOP, TIME_BOTTOM, TIME_PLOT_H = 64, 20, 40, 52, 180

# -- buckets ----------------------------------------------------------------------------------------------
MAX_BARS = 120  # buckets per span (alignment to the bucket grid may add one)
MIN_SLOTS = 30  # a short span is shown as the last 30 minutes, not one fat bar
BUCKETS = (60, 300, 900, 3600, 21600, 86400)
DAY = 86400
MAX_SERIES = 10  # more are merged into "other"
MAX_ROWS = 50
_EPOCH = dt.datetime(1970, 1, 1)
_TICK_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, DAY, 2 * DAY, 7 * DAY, 14 * DAY)

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30}|(?:rgb|rgba|hsl|hsla)\([0-9., %]{1,40}\)")


# -- small helpers --------------------------------------------------------------------------------------------
def _esc(text: object) -> str:
    """XML-escape text (attributes too) after replacing characters XML 1.0 cannot carry."""
    return html.escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def _n(value: float) -> str:
    """A coordinate: one decimal at most."""
    s = f"{value:.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return "0" if s == "-0" else s


def _color(value: str | None, default: str) -> str:
    return value if value is not None and _COLOR.fullmatch(value) else default


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30]


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is None else t.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _open(kind: str, height: float, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'width="100%" role="img" aria-label="{_esc(label)}" font-family="sans-serif" font-size="{FONT}" '
        f'fill="{TEXT_COLOR}">'
    )


def _header(title: str, subtitle: str, left: float) -> list[str]:
    out = [
        f"<title>{_esc(title)}</title>",
        f'<text class="chart-title" x="{_n(left)}" y="22" font-size="14" font-weight="bold">'
        f"{_esc(_short(title, TITLE_CHARS))}</text>",
    ]
    if subtitle:
        out.append(
            f'<text class="chart-subtitle" x="{WIDTH - TIME_RIGHT}" y="22" text-anchor="end" fill="{MUTED_COLOR}">'
            f"{_esc(_short(subtitle, 40))}</text>"
        )
    return out


def _empty_note(x: float, y: float) -> str:
    return (
        f'<text class="chart-empty" x="{_n(x)}" y="{_n(y)}" text-anchor="middle" fill="{MUTED_COLOR}">'
        "no data yet</text>"
    )


# -- buckets ----------------------------------------------------------------------------------------------------
def bucket_width(span_seconds: float) -> int:
    """Bucket width (seconds) for a span: 1 min up to 2 h, then 5 min, 15 min, 1 h, 6 h, 1 day, then whole
    days, so that the span holds at most :data:`MAX_BARS` buckets."""
    for width in BUCKETS:
        if span_seconds <= width * MAX_BARS:
            return width
    return DAY * math.ceil(span_seconds / (DAY * MAX_BARS))


def bucket_phrase(width_seconds: int) -> str:
    """The bucket in words: ``60`` -> ``"minute"``, ``300`` -> ``"5 min"``, ``3600`` -> ``"hour"``,
    ``21600`` -> ``"6 h"``, ``86400`` -> ``"day"``, ``172800`` -> ``"2 days"``."""
    for size, one, many in ((DAY, "day", " days"), (3600, "hour", " h"), (60, "minute", " min")):
        if width_seconds % size == 0:
            k = width_seconds // size
            return one if k == 1 else f"{k}{many}"
    return f"{width_seconds} s"


def bucket_counts(
    times: Iterable[dt.datetime], width_seconds: float, start: dt.datetime, n: int | None = None
) -> list[int]:
    """Events per bucket ``[start + i*width, start + (i+1)*width)``.

    Without ``n`` the list ends at the last event's bucket; with it the list has ``n`` buckets. Times before
    ``start`` (or past the ``n`` buckets) are not counted.
    """
    if width_seconds <= 0:
        raise ValueError("width_seconds must be positive")
    width = dt.timedelta(seconds=width_seconds)
    base = _utc(start)
    tally = collections.Counter(times)  # repeated times (e.g. per-minute counts expanded) cost one division each
    indexes = {(_utc(t) - base) // width: 0 for t in tally}
    for t, k in tally.items():
        indexes[(_utc(t) - base) // width] += k
    size = n if n is not None else max(indexes, default=-1) + 1
    counts = [0] * size
    for i, k in indexes.items():
        if 0 <= i < size:
            counts[i] += k
    return counts


def nice_ticks(top: int, target: int = 5) -> list[int]:
    """Round integer ticks from 0 covering ``top`` (steps 1, 2, 5 × 10^k); ``[0]`` for ``top <= 0``."""
    if top <= 0:
        return [0]
    raw = top / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    istep = max(1, int(round(step)))
    return list(range(0, math.ceil(top / istep) * istep + 1, istep))


class _Timeline(NamedTuple):
    start: dt.datetime
    width: int
    n: int

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.width * self.n)

    def bucket_label(self, i: int) -> str:
        lo = self.start + dt.timedelta(seconds=self.width * i)
        hi = lo + dt.timedelta(seconds=self.width)
        if self.width % DAY == 0:
            last = hi - dt.timedelta(days=1)
            return f"{lo:%Y-%m-%d}" + (f" – {last:%Y-%m-%d}" if last != lo else "")
        return f"{lo:%Y-%m-%d %H:%M}–{hi:%H:%M} UTC"


def _timeline(times: Sequence[dt.datetime], now: dt.datetime | None) -> _Timeline | None:
    if not times and now is None:
        return None
    ends = list(times) + ([now] if now is not None else [])
    lo, hi = min(ends), max(ends)
    width = bucket_width((hi - lo).total_seconds())
    step = dt.timedelta(seconds=width)
    start = _EPOCH + ((lo - _EPOCH) // step) * step
    n = (hi - start) // step + 1
    if n < MIN_SLOTS:
        start -= (MIN_SLOTS - n) * step
        n = MIN_SLOTS
    return _Timeline(start, width, n)


def _time_ticks(tl: _Timeline, left: float, plot_w: float) -> list[tuple[float, str]]:
    """(x, label) for round UTC times inside the timeline, spaced so the labels do not collide."""
    start, end = tl.start, tl.end
    span = (end - start).total_seconds()
    multi_day = start.date() != (end - dt.timedelta(microseconds=1)).date()
    label_w = (11 if multi_day else 5) * CHAR_W + 20
    most = max(2, int(plot_w // label_w))
    step = next((s for s in _TICK_STEPS if span / s <= most), DAY * math.ceil(span / most / DAY))
    if step >= DAY:
        fmt = "%Y-%m-%d" if start.year != end.year else "%m-%d"
    else:
        fmt = "%m-%d %H:%M" if multi_day else "%H:%M"
    delta = dt.timedelta(seconds=step)
    tick = _EPOCH + -((_EPOCH - start) // delta) * delta  # first multiple of step at or after start
    ticks = []
    while tick <= end:
        x = left + (tick - start).total_seconds() / span * plot_w
        label = tick.strftime(fmt)
        half = len(label) * CHAR_W / 2
        if x - half >= 0 and x + half <= WIDTH:
            ticks.append((x, label))
        tick += delta
    return ticks


# -- the two time charts ------------------------------------------------------------------------------------
class _Series(NamedTuple):
    name: str
    color: str
    times: list[dt.datetime]


def rate_chart(title: str, times: Sequence[dt.datetime], *, unit: str = "files", now: dt.datetime | None = None) -> str:
    """Events per time bucket as bars (e.g. "STF files per minute").

    The span runs from the first event to ``now`` (or the last event); the bucket width follows the span
    (:func:`bucket_width`) and the y-axis label names it ("files per 5 min"). Short spans are shown as the
    last 30 minutes.
    """
    return _time_chart("chart-rate", title, [_Series(unit, BAR_COLOR, [_utc(t) for t in times])], unit, now, False)


def stacked_rate_chart(
    title: str,
    series: Mapping[str, Sequence[dt.datetime]],
    *,
    colors: Mapping[str, str] | None = None,
    unit: str = "logs",
    now: dt.datetime | None = None,
) -> str:
    """Events per time bucket, stacked by series (log volume by level), with a legend.

    Same buckets as :func:`rate_chart`. Series stack bottom-up in the mapping's order. Colours: ``colors``,
    else the level palette for level names (DEBUG … CRITICAL), else a calm palette. More than
    :data:`MAX_SERIES` series: the largest are kept and the rest merged into "other".
    """
    colors = colors or {}
    items: list[_Series] = []
    for i, (name, times) in enumerate(series.items()):
        default = LEVEL_COLORS.get(str(name).upper(), PALETTE[i % len(PALETTE)])
        items.append(_Series(str(name), _color(colors.get(name), default), [_utc(t) for t in times]))
    if len(items) > MAX_SERIES:
        keep = set(sorted(range(len(items)), key=lambda i: -len(items[i].times))[: MAX_SERIES - 1])
        rest = [t for i, s in enumerate(items) if i not in keep for t in s.times]
        merged = len(items) - len(keep)
        items = [s for i, s in enumerate(items) if i in keep] + [_Series(f"other ({merged} series)", OTHER_COLOR, rest)]
    return _time_chart("chart-stacked", title, items, unit, now, True)


def _time_chart(kind: str, title: str, series: list[_Series], unit: str, now: dt.datetime | None, stacked: bool) -> str:
    all_times = [t for s in series for t in s.times]
    tl = _timeline(all_times, _utc(now) if now is not None else None)
    counts = [bucket_counts(s.times, tl.width, tl.start, tl.n) for s in series] if tl else [[] for _ in series]
    totals = [sum(col) for col in zip(*counts)] if tl else []
    total = len(all_times)
    ticks_y = nice_ticks(max(totals, default=0))
    y_top = ticks_y[-1] or 1

    # legend first: its rows push the plot down
    legend: list[str] = []
    top = TIME_TOP
    if stacked:
        lx, ly = float(TIME_LEFT), TIME_TOP
        for i, s in enumerate(series):
            text = f"{_short(s.name, 30)} {len(s.times):,}"
            w = 14 + len(text) * CHAR_W + 16
            if lx + w > WIDTH - TIME_RIGHT and lx > TIME_LEFT:
                lx, ly = float(TIME_LEFT), ly + 18
            legend.append(
                f'<g class="chart-legend-item chart-series-{i}"><rect x="{_n(lx)}" y="{ly - 9}" width="10" '
                f'height="10" fill="{_esc(s.color)}"/><text x="{_n(lx + 14)}" y="{ly}">{_esc(text)}</text></g>'
            )
            lx += w
        top = ly + 14
    plot_w = WIDTH - TIME_LEFT - TIME_RIGHT
    plot_h = TIME_PLOT_H
    height = top + plot_h + TIME_BOTTOM
    bottom = top + plot_h
    phrase = bucket_phrase(tl.width) if tl else "minute"
    y_label = f"{unit} per {phrase}"

    if tl and total:
        when = f"{tl.start:%Y-%m-%d %H:%M} to {tl.end:%Y-%m-%d %H:%M} UTC"
        label = f"{title}: {total:,} {unit} from {when}, {y_label}, peak {max(totals):,}"
        if stacked:
            label += "; " + ", ".join(f"{s.name} {len(s.times):,}" for s in series)
        subtitle = f"{total:,} {unit}"
    else:
        label, subtitle = f"{title}: no data yet", ""

    out = [_open(kind, height, label), *_header(title, subtitle, TIME_LEFT)]
    if legend:
        out.append(f'<g class="chart-legend">{"".join(legend)}</g>')

    # y grid and ticks
    grid, labels = [], []
    for v in ticks_y:
        y = bottom - v / y_top * plot_h
        if v:
            grid.append(f'<line x1="{TIME_LEFT}" y1="{_n(y)}" x2="{WIDTH - TIME_RIGHT}" y2="{_n(y)}"/>')
        labels.append(f'<text x="{TIME_LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">{v:,}</text>')
    # x ticks
    if tl:
        for x, text in _time_ticks(tl, TIME_LEFT, plot_w):
            grid.append(f'<line x1="{_n(x)}" y1="{top}" x2="{_n(x)}" y2="{bottom}"/>')
            labels.append(f'<text x="{_n(x)}" y="{bottom + 16}" text-anchor="middle">{_esc(text)}</text>')
    out.append(f'<g class="chart-grid" stroke="{GRID_COLOR}">{"".join(grid)}</g>')
    out.append(f'<g class="chart-ticks" fill="{MUTED_COLOR}" font-size="11">{"".join(labels)}</g>')

    # bars
    if tl and total:
        slot = plot_w / tl.n
        bar_w = max(1.0, slot * 0.8)
        offset = (slot - bar_w) / 2
        if not stacked:
            bars = []
            for i, c in enumerate(counts[0]):
                if c:
                    h = max(1.0, c / y_top * plot_h)
                    bars.append(
                        f'<rect class="chart-bar" x="{_n(TIME_LEFT + i * slot + offset)}" y="{_n(bottom - h)}" '
                        f'width="{_n(bar_w)}" height="{_n(h)}"><title>{tl.bucket_label(i)}: {c:,} {_esc(unit)}'
                        f"</title></rect>"
                    )
            out.append(f'<g class="chart-bars" fill="{BAR_COLOR}">{"".join(bars)}</g>')
        else:
            base = [float(bottom)] * tl.n  # pixel top of the stack so far, per bucket
            for si, s in enumerate(series):
                parts = []
                for i, c in enumerate(counts[si]):
                    if c:
                        h = max(1.0, c / y_top * plot_h)
                        y = base[i] - h
                        parts.append(f"M{_n(TIME_LEFT + i * slot + offset)} {_n(y)}h{_n(bar_w)}v{_n(h)}h-{_n(bar_w)}z")
                        base[i] = y
                if parts:
                    slug = _slug(s.name)
                    cls = f"chart-series chart-series-{si}" + (f" chart-series-{slug}" if slug else "")
                    out.append(f'<path class="{_esc(cls)}" fill="{_esc(s.color)}" d="{"".join(parts)}"/>')
            hits = []
            for i, c in enumerate(totals):
                if c:
                    detail = ", ".join(f"{s.name} {counts[si][i]:,}" for si, s in enumerate(series) if counts[si][i])
                    hits.append(
                        f'<rect x="{_n(TIME_LEFT + i * slot)}" y="{top}" width="{_n(slot)}" height="{plot_h}">'
                        f"<title>{tl.bucket_label(i)}: {c:,} {_esc(unit)} ({_esc(detail)})</title></rect>"
                    )
            out.append(f'<g class="chart-hits" fill="#ffffff" fill-opacity="0">{"".join(hits)}</g>')
    else:
        out.append(_empty_note(TIME_LEFT + plot_w / 2, top + plot_h / 2))

    # axes and their labels
    out.append(
        f'<g class="chart-axis" stroke="{AXIS_COLOR}" fill="none"><line x1="{TIME_LEFT}" y1="{top}" x2="{TIME_LEFT}" '
        f'y2="{bottom}"/><line x1="{TIME_LEFT}" y1="{bottom}" x2="{WIDTH - TIME_RIGHT}" y2="{bottom}"/></g>'
    )
    cy = top + plot_h / 2
    out.append(
        f'<text class="chart-axis-label" x="{_n(TIME_LEFT + plot_w / 2)}" y="{bottom + 38}" text-anchor="middle">'
        f"time (UTC)</text>"
        f'<text class="chart-axis-label" x="16" y="{_n(cy)}" text-anchor="middle" transform="rotate(-90 16 {_n(cy)})">'
        f"{_esc(_short(y_label, 32))}</text>"
    )
    out.append("</svg>")
    return "".join(out)


# -- freshness ----------------------------------------------------------------------------------------------------
def format_age(seconds: float | None) -> str:
    """``12 s``, ``4 min``, ``3 h``, ``2 d``; ``never`` for None (or a value that is not finite)."""
    if seconds is None or not math.isfinite(seconds):
        return "never"
    s = max(0.0, seconds)
    if s < 120:
        return f"{int(round(s))} s"
    if s < 7200:
        return f"{int(s // 60)} min"
    if s < 2 * DAY:
        return f"{int(s // 3600)} h"
    return f"{int(s // DAY)} d"


def freshness_color(seconds: float | None, stale_after: float) -> str:
    """Green below ``stale_after / 3``, amber below ``stale_after``, red beyond (or never)."""
    if seconds is None or not math.isfinite(seconds) or seconds >= stale_after:
        return STALE_COLOR
    return FRESH_COLOR if seconds < stale_after / 3 else AGING_COLOR


def _freshness_class(seconds: float | None, stale_after: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "chart-never"
    if seconds >= stale_after:
        return "chart-stale"
    return "chart-fresh" if seconds < stale_after / 3 else "chart-aging"


def _duration_ticks(cap: float) -> list[tuple[float, str]]:
    """Seven ticks 0 … cap (thirds of stale_after), labelled in one unit chosen from the cap."""
    size, unit = next(
        (size, unit)
        for limit, size, unit in ((300, 1, "s"), (3 * 3600, 60, "min"), (3 * DAY, 3600, "h"), (math.inf, DAY, "d"))
        if cap < limit
    )
    ticks = []
    for k in range(7):
        v = cap * k / 6
        text = f"{v / size:.1f}".rstrip("0").rstrip(".")
        ticks.append((v, "0" if k == 0 else f"{text} {unit}"))
    return ticks


def freshness_chart(
    title: str, items: Sequence[tuple[str, float | None]], *, stale_after: float, now_label: str = ""
) -> str:
    """One horizontal bar per agent: seconds since its last heartbeat (None = never).

    Colours by :func:`freshness_color`. The scale is capped at ``2 * stale_after`` so one long-dead agent
    does not squash the rest: capped bars end with "›". The value is written at the bar's end. At most
    :data:`MAX_ROWS` rows, in the given order, then a "+N more" line.
    """
    if not stale_after > 0 or not math.isfinite(stale_after):
        raise ValueError("stale_after must be a positive number of seconds")
    rows = list(items[:MAX_ROWS])
    more = len(items) - len(rows)
    cap = 2 * stale_after
    names = [_short(str(name), 28) for name, _ in rows]
    left = max(100.0, 30 + max((len(n) for n in names), default=0) * CHAR_W + 12)
    right = 64
    plot_w = WIDTH - left - right
    row_h, bar_h = 20, 14
    top = TIME_TOP
    plot_h = row_h * max(len(rows), 2)
    bottom = top + plot_h
    height = bottom + 48 + (18 if more else 0)

    def x_of(v: float) -> float:
        return left + min(v, cap) / cap * plot_w

    classes = [_freshness_class(v, stale_after) for _, v in rows]
    stale = sum(freshness_color(v, stale_after) == STALE_COLOR for _, v in items)
    if items:
        label = f"{title}: {len(items)} agents, {stale} stale (no heartbeat for {format_age(stale_after)} or more)"
        label += ". " + ", ".join(f"{name} {format_age(v)}" for name, v in rows)
        if more:
            label += f", +{more:,} more"
    else:
        label = f"{title}: no data yet"

    out = [_open("chart-freshness", height, label), *_header(title, now_label, 16)]
    grid, labels = [], []
    for v, text in _duration_ticks(cap):
        x = x_of(v)
        if v:
            grid.append(f'<line x1="{_n(x)}" y1="{top}" x2="{_n(x)}" y2="{bottom}"/>')
        labels.append(f'<text x="{_n(x)}" y="{bottom + 16}" text-anchor="middle">{_esc(text)}</text>')
    out.append(f'<g class="chart-grid" stroke="{GRID_COLOR}">{"".join(grid)}</g>')
    out.append(f'<g class="chart-ticks" fill="{MUTED_COLOR}" font-size="11">{"".join(labels)}</g>')
    sx = x_of(stale_after)
    out.append(
        f'<g class="chart-threshold" stroke="{STALE_COLOR}" stroke-dasharray="4 3"><line x1="{_n(sx)}" y1="{top - 4}" '
        f'x2="{_n(sx)}" y2="{bottom}"/></g><text class="chart-threshold" x="{_n(sx)}" y="{top - 7}" '
        f'text-anchor="middle" fill="{STALE_COLOR}" font-size="11">stale</text>'
    )

    for i, ((name, value), short, cls) in enumerate(zip(rows, names, classes)):
        y = top + i * row_h + (row_h - bar_h) / 2
        ty = _n(y + bar_h - 3)
        never = cls == "chart-never"
        end = x_of(cap) if never or value is None else x_of(value)
        capped = not never and value is not None and value > cap
        color = freshness_color(value, stale_after)
        tip = f"{name}: " + ("never sent a heartbeat" if never else f"last heartbeat {format_age(value)} ago")
        parts = [
            f'<g class="chart-row {cls}"><title>{_esc(tip)}</title>',
            f'<text class="chart-label" x="{_n(left - 8)}" y="{ty}" text-anchor="end">{_esc(short)}</text>',
            f'<rect class="chart-bar" x="{_n(left)}" y="{_n(y)}" width="{_n(max(2.0, end - left))}" height="{bar_h}" '
            f'fill="{color}"' + (' fill-opacity="0.45"' if never else "") + "/>",
        ]
        if capped:
            parts.append(
                f'<text class="chart-capped" x="{_n(end - 4)}" y="{ty}" text-anchor="end" fill="#ffffff" '
                f'font-weight="bold">›</text>'
            )
        parts.append(f'<text class="chart-value" x="{_n(end + 5)}" y="{ty}">{_esc(format_age(value))}</text></g>')
        out.append("".join(parts))
    if not rows:
        out.append(_empty_note(left + plot_w / 2, top + plot_h / 2 + 4))

    out.append(
        f'<g class="chart-axis" stroke="{AXIS_COLOR}" fill="none"><line x1="{_n(left)}" y1="{top}" x2="{_n(left)}" '
        f'y2="{bottom}"/><line x1="{_n(left)}" y1="{bottom}" x2="{_n(left + plot_w)}" y2="{bottom}"/></g>'
    )
    axis = f"seconds since last heartbeat (scale capped at {format_age(cap)}, › = beyond)"
    out.append(
        f'<text class="chart-axis-label" x="{_n(left + plot_w / 2)}" y="{bottom + 38}" text-anchor="middle">'
        f"{_esc(axis)}</text>"
        f'<text class="chart-axis-label" x="14" y="{_n(top + plot_h / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_n(top + plot_h / 2)})">agent</text>'
    )
    if more:
        out.append(
            f'<text class="chart-more" x="{_n(left)}" y="{bottom + 56}" fill="{MUTED_COLOR}">+{more:,} more</text>'
        )
    out.append("</svg>")
    return "".join(out)
