"""Charts for the back office, drawn on the server as inline SVG: no script, no network.

Amounts stay `Decimal`; only the drawing's geometry is in floats."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 24, 28


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: list[Decimal]


def _top(series: list[Series]) -> Decimal:
    return max([value for s in series for value in s.values] + [Decimal(0)]) or Decimal(1)


def _tick(value: Decimal, top: Decimal) -> str:
    """An axis label: whole numbers once the scale is large enough, else two places."""
    return f"{value:,.0f}" if top >= 10 else f"{value:,.2f}"


def _frame(
    *, label: str, days: list[date], top: Decimal, series: list[Series], body: str
) -> SafeString:
    """The axes, their labels, the legend and `body` (the marks), as one SVG."""
    lines = []
    for half in (0, 1, 2):  # the axis, the middle and the top
        value = top * half / 2
        y = _y(value, top)
        lines.append(
            (LEFT, f"{y:.1f}", WIDTH - RIGHT, f"{y:.1f}", f"{y + 4:.1f}", _tick(value, top))
        )
    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>'
        '<text x="' + str(LEFT - 6) + '" y="{}" font-size="11" text-anchor="end" '
        'fill="#666">{}</text>',
        lines,
    )
    middle = days[len(days) // 2]
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="11" text-anchor="{}" fill="#666">{}</text>',
        (
            (f"{x:.1f}", HEIGHT - 8, anchor, f"{day:%d %b}")
            for day, x, anchor in (
                (days[0], LEFT, "start"),
                (middle, (LEFT + WIDTH - RIGHT) / 2, "middle"),
                (days[-1], WIDTH - RIGHT, "end"),
            )
        ),
    )
    legend = format_html_join(
        "",
        '<rect x="{}" y="6" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="15" font-size="11">{}</text>',
        ((LEFT + 110 * i, s.colour, LEFT + 110 * i + 14, s.name) for i, s in enumerate(series)),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {w} {h}" '
        'width="100%" style="max-width: {w}px" aria-label="{label}"><title>{label}</title>'
        "{grid}{ticks}{legend}{body}</svg>",
        w=WIDTH,
        h=HEIGHT,
        label=label,
        grid=grid,
        ticks=ticks,
        legend=legend,
        body=body,
    )


def _y(value: Decimal, top: Decimal) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - float(value / top))


def bar_chart(*, label: str, days: list[date], series: list[Series], unit: str) -> SafeString:
    """Bars side by side for each day, one per series; each bar's tooltip gives its amount."""
    top = _top(series)
    slot = (WIDTH - LEFT - RIGHT) / len(days)
    bar = slot * 0.8 / len(series)
    base = HEIGHT - BOTTOM
    marks = []
    for i, day in enumerate(days):
        for j, s in enumerate(series):
            value = s.values[i]
            y = _y(value, top)
            x = LEFT + i * slot + slot * 0.1 + j * bar
            marks.append(
                (
                    *(f"{n:.1f}" for n in (x, y, bar, base - y)),
                    s.colour,
                    f"{day:%d %b}: {value} {unit} {s.name}",
                )
            )
    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        marks,
    )
    return _frame(label=label, days=days, top=top, series=series, body=body)


def line_chart(*, label: str, days: list[date], series: list[Series], unit: str) -> SafeString:
    """A line per series through each day's value, with a dot (and tooltip) on each day."""
    top = _top(series)
    step = (WIDTH - LEFT - RIGHT) / max(len(days) - 1, 1)
    lines: list[tuple[str, str]] = []
    dots: list[tuple[str, str, str, str]] = []
    for s in series:
        points = [(LEFT + i * step, _y(value, top)) for i, value in enumerate(s.values)]
        lines.append((" ".join(f"{x:.1f},{y:.1f}" for x, y in points), s.colour))
        dots.extend(
            (f"{x:.1f}", f"{y:.1f}", s.colour, f"{day:%d %b}: {value} {unit} {s.name}")
            for (x, y), day, value in zip(points, days, s.values, strict=True)
        )
    body = format_html(
        "{}{}",
        format_html_join(
            "",
            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>',
            lines,
        ),
        format_html_join(
            "",
            '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}</title></circle>',
            dots,
        ),
    )
    return _frame(label=label, days=days, top=top, series=series, body=body)
