"""The overview's daily chart: carts, abandoned carts and recovered orders per day as lines, as plain numbers for SVG."""

from __future__ import annotations

from typing import Any

from collector.dashboard.charts import nice_ceiling

# (key in the daily series, label, CSS class): the lines drawn, in legend order.
LINES = (
    ("carts", "Carts", "l-carts"),
    ("abandoned", "Abandoned", "l-abandoned"),
    ("recovered_orders", "Recovered orders", "l-recovered"),
)


def daily_chart(series: list[dict[str, Any]], width: int = 720, height: int = 220) -> dict[str, Any] | None:
    """Polyline geometry for the daily series (collector/analytics/money.py); None when there is nothing to draw."""
    if not series or not any(p[key] for p in series for key, _, _ in LINES):
        return None
    left, right, top, bottom = 48, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(p[key] for p in series for key, _, _ in LINES)
    scale_max = nice_ceiling(peak) if peak > 0 else 1.0
    n = len(series)
    slot = plot_w / n

    def x(i: int) -> float:
        return round(left + i * slot + slot / 2, 2)

    def y(v: float) -> float:
        return round(top + plot_h - plot_h * v / scale_max, 2)

    lines = [
        {
            "key": key,
            "label": label,
            "cls": cls,
            "points": " ".join(f"{x(i)},{y(p[key])}" for i, p in enumerate(series)),
            "total": sum(p[key] for p in series),
        }
        for key, label, cls in LINES
    ]
    # One hover target per point, telling every number of that day (revenue included).
    dots = [
        {
            "x": x(i),
            "label": (
                f"{p['date']}{'' if p['days'] == 1 else ' (' + str(p['days']) + ' days)'}: {p['carts']} carts,"
                f" {p['abandoned']} abandoned, {p['recovered_orders']} recovered orders, {p['revenue']:,.2f} revenue"
            ),
        }
        for i, p in enumerate(series)
    ]
    ticks = [{"y": y(scale_max * f), "label": f"{scale_max * f:,.0f}"} for f in (0, 0.5, 1)]
    xlabels = [
        {
            "x": x(i),
            "label": series[i]["date"],
            "anchor": "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle",
        }
        for i in sorted({0, n // 2, n - 1})
    ]
    return {
        "width": width,
        "height": height,
        "lines": lines,
        "dots": dots,
        "slot": round(slot, 2),
        "top": top,
        "plot_h": plot_h,
        "ticks": ticks,
        "xlabels": xlabels,
        "left": left,
        "right": width - right,
        "per": series[0]["days"],
    }
