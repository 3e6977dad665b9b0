"""The overview's pictures: the funnel's rows and the recovered-revenue bar chart, as plain numbers for SVG."""

from __future__ import annotations

import math
from typing import Any

from collector.dashboard.templating import fmt_pct


def revenue_chart(series: list[dict[str, Any]], width: int = 720, height: int = 220) -> dict[str, Any] | None:
    """Bar geometry for the inline SVG chart of recovered revenue."""
    if not series:
        return None
    left, right, top, bottom = 64, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(b["revenue"] for b in series)
    scale_max = nice_ceiling(peak) if peak > 0 else 1.0
    n = len(series)
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    bars = []
    for i, b in enumerate(series):
        h = plot_h * b["revenue"] / scale_max
        bars.append(
            {
                "x": round(left + i * slot + (slot - bar_w) / 2, 2),
                "y": round(top + plot_h - h, 2),
                "w": round(bar_w, 2),
                "h": round(h, 2),
                "label": f"{b['date']}: {b['revenue']:,.2f} from {b['orders']} order{'s' if b['orders'] != 1 else ''}",
            }
        )
    ticks = [{"y": round(top + plot_h - plot_h * f, 2), "label": f"{scale_max * f:,.0f}"} for f in (0, 0.5, 1)]
    label_idx = sorted({0, n // 2, n - 1})
    xlabels = [
        {
            "x": round(left + i * slot + slot / 2, 2),
            "label": series[i]["date"],
            "anchor": "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle",
        }
        for i in label_idx
    ]
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "ticks": ticks,
        "xlabels": xlabels,
        "left": left,
        "right": width - right,
        "base": top + plot_h,
        "total": round(sum(b["revenue"] for b in series), 2),
    }


def nice_ceiling(value: float) -> float:
    """The axis top: the next 1, 2, 2.5, 5 or 10 times a power of ten."""
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= m * exp:
            return m * exp
    return 10.0 * exp


def funnel_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    r = stats["rates"]
    clicked_of = (
        f"of reminders sent ({fmt_pct(r['click_to_open_rate'])} of opened)"
        if stats["emails_opened"]
        else "of reminders sent"
    )
    rows = [
        ("carts", "Carts", stats["carts"], None, ""),
        ("abandoned", "Abandoned", stats["abandoned"], r["abandonment_rate"], "of carts"),
        ("popup_shown", "Popup shown", stats["popup_shown"], None, ""),
        ("leads", "Leads", stats["leads"], r["popup_conversion_rate"], "of popups shown"),
        ("emails_sent", "Emailed", stats["emails_sent"], None, f"reminders to {stats['carts_emailed']} carts"),
        ("emails_opened", "Opened", stats["emails_opened"], r["open_rate"], "of reminders sent"),
        ("emails_clicked", "Clicked", stats["emails_clicked"], r["click_rate"], clicked_of),
        ("recovered_orders", "Recovered orders", stats["recovered_orders"], r["recovery_rate"], "of abandoned carts"),
    ]
    peak = max([v for _, _, v, _, _ in rows] + [1])
    return [
        {"key": k, "label": label, "value": v, "rate": rate, "rate_of": of, "bar": round(300 * v / peak, 1)}
        for k, label, v, rate, of in rows
    ]
