"""Small static SVG charts, rendered in Python: no library, no script, nothing fetched.

Each chart is one inline ``<svg>`` with a title, axis labels, a y grid and a legend. Every text
is HTML-escaped (e-mail-shaped text removed first, as everywhere on the page), every number is
formatted from an int and every coordinate with one decimal, so the page can take a chart as
markup (html.py), and the same data gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from assets.reports.csvsafe import redact

WIDTH, HEIGHT = 520, 290
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 16, 58
LEGEND_ROW = 18
LEGEND_MARGIN = 12
CHAR_WIDTH = 6.4  # approximate width of one legend character at 11px
MAX_X_LABELS = 8
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]
    colour: str
    dashed: bool = False


def _t(value: object) -> str:
    """Text or an attribute value in the SVG: a series name can be a rule id taken from the data."""
    return escape(redact(value), quote=True)


def _f(x: float) -> str:
    return f"{x:.1f}"


def nice_ticks(maximum: int, target: int = 5) -> list[int]:
    """Round y ticks from 0 to at least `maximum` (integer counts), steps of 1, 2 or 5 x 10^k."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / target
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)
    step = max(1, int(step))
    top = math.ceil(maximum / step) * step
    return list(range(0, top + step, step))


def date_label(day: date, with_year: bool) -> str:
    text = f"{day.day:02d} {_MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if with_year else text


class _Frame:
    """Plot geometry shared by the chart kinds: x bands per day, a linear y scale from 0."""

    def __init__(self, days: Sequence[date], maximum: int, legend_names: Sequence[str]):
        self.days = list(days)
        self.ticks = nice_ticks(maximum)
        self.plot_w = WIDTH - LEFT - RIGHT
        widest = max((len(name) for name in legend_names), default=0)
        self.legend_w = WIDTH - 2 * LEGEND_MARGIN
        self.legend_columns = max(1, min(4, int(self.legend_w // (widest * CHAR_WIDTH + 30)))) if widest else 1
        legend_rows = math.ceil(len(legend_names) / self.legend_columns)
        self.height = HEIGHT + legend_rows * LEGEND_ROW
        self.plot_h = HEIGHT - TOP - BOTTOM
        self.band = self.plot_w / max(1, len(self.days))

    def x(self, i: int) -> float:
        return LEFT + self.band * (i + 0.5)

    def y(self, value: float) -> float:
        return TOP + self.plot_h * (1 - value / self.ticks[-1])

    def axes(self, y_label: str) -> list[str]:
        out = []
        for tick in self.ticks:
            y = self.y(tick)
            out.append(
                f'<line class="grid" x1="{LEFT}" y1="{_f(y)}" x2="{WIDTH - RIGHT}" y2="{_f(y)}"/>'
                f'<text class="tick" x="{LEFT - 6}" y="{_f(y + 4)}" text-anchor="end">{tick:,}</text>'
            )
        base = self.y(0)
        out.append(f'<line class="axis" x1="{LEFT}" y1="{_f(base)}" x2="{WIDTH - RIGHT}" y2="{_f(base)}"/>')
        out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{_f(base)}"/>')
        n = len(self.days)
        every = max(1, math.ceil(n / MAX_X_LABELS))
        with_year = n > 0 and self.days[0].year != self.days[-1].year
        for i, day in enumerate(self.days):
            if i % every == 0 or i == n - 1 and (n - 1) % every > every // 2:
                x = self.x(i)
                out.append(
                    f'<line class="axis" x1="{_f(x)}" y1="{_f(base)}" x2="{_f(x)}" y2="{_f(base + 4)}"/>'
                    f'<text class="tick" x="{_f(x)}" y="{_f(base + 18)}" text-anchor="middle">'
                    f"{_t(date_label(day, with_year))}</text>"
                )
        out.append(
            f'<text class="axis-label" x="{_f(LEFT + self.plot_w / 2)}" y="{_f(base + 38)}" '
            f'text-anchor="middle">run date</text>'
        )
        out.append(
            f'<text class="axis-label" transform="translate(16 {_f(TOP + self.plot_h / 2)}) rotate(-90)" '
            f'text-anchor="middle">{_t(y_label)}</text>'
        )
        return out

    def legend(self, series: Sequence[Series]) -> list[str]:
        out = []
        column_w = self.legend_w / self.legend_columns
        for i, s in enumerate(series):
            row, col = divmod(i, self.legend_columns)
            x = LEGEND_MARGIN + col * column_w
            y = HEIGHT - 6 + row * LEGEND_ROW
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            out.append(
                f'<line x1="{_f(x)}" y1="{_f(y - 4)}" x2="{_f(x + 18)}" y2="{_f(y - 4)}" '
                f'stroke="{_t(s.colour)}" stroke-width="6"{dash}/>'
                f'<text class="legend" x="{_f(x + 24)}" y="{_f(y)}">{_t(s.name)}</text>'
            )
        return out

    def svg(self, chart_id: str, title: str, description: str, body: list[str]) -> str:
        return (
            f'<svg class="chart" id="{_t(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {WIDTH} {self.height}" width="{WIDTH}" height="{self.height}" role="img" '
            f'aria-labelledby="{_t(chart_id)}-title {_t(chart_id)}-desc">'
            f'<title id="{_t(chart_id)}-title">{_t(title)}</title>'
            f'<desc id="{_t(chart_id)}-desc">{_t(description)}</desc>' + "".join(body) + "</svg>"
        )


def line_chart(chart_id: str, title: str, days: Sequence[date], series: Sequence[Series], y_label: str) -> str:
    """One line per series, a dot per day, the last value written at the end of each line."""
    maximum = max((max(s.values, default=0) for s in series), default=0)
    frame = _Frame(days, maximum, [s.name for s in series])
    body = frame.axes(y_label)
    for s in series:
        points = [(frame.x(i), frame.y(v)) for i, v in enumerate(s.values)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        if len(points) > 1:
            path = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
            body.append(f'<polyline class="line" points="{path}" stroke="{_t(s.colour)}"{dash}/>')
        if len(points) <= 62:
            body.extend(
                f'<circle cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{_t(s.colour)}"><title>'
                f"{_t(days[i].isoformat())}: {s.values[i]:,} {_t(s.name)}</title></circle>"
                for i, (x, y) in enumerate(points)
            )
        if points:
            x, y = points[-1]
            body.append(
                f'<text class="value" x="{_f(x - 4)}" y="{_f(y - 8)}" text-anchor="end">{s.values[-1]:,}</text>'
            )
    body.extend(frame.legend(series))
    latest = ", ".join(f"{s.name} {s.values[-1]:,}" for s in series if s.values)
    return frame.svg(chart_id, title, f"{len(days)} runs; latest: {latest or 'none'}", body)


def stacked_bar_chart(chart_id: str, title: str, days: Sequence[date], series: Sequence[Series], y_label: str) -> str:
    """One bar per day, stacked by series, with each day's total on top when there is room."""
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    frame = _Frame(days, max(totals, default=0), [s.name for s in series])
    body = frame.axes(y_label)
    width = max(1.0, frame.band * 0.7)
    for i in range(len(days)):
        bottom = 0
        x = frame.x(i) - width / 2
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            y_top, y_bottom = frame.y(bottom + value), frame.y(bottom)
            body.append(
                f'<rect x="{_f(x)}" y="{_f(y_top)}" width="{_f(width)}" height="{_f(y_bottom - y_top)}" '
                f'fill="{_t(s.colour)}"><title>{_t(days[i].isoformat())}: {value:,} {_t(s.name)}</title></rect>'
            )
            bottom += value
        if totals[i] and frame.band >= 22:
            body.append(
                f'<text class="value" x="{_f(frame.x(i))}" y="{_f(frame.y(totals[i]) - 4)}" '
                f'text-anchor="middle">{totals[i]:,}</text>'
            )
    body.extend(frame.legend(series))
    return frame.svg(chart_id, title, f"{len(days)} runs; latest total: {totals[-1] if totals else 0:,}", body)
