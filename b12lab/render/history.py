"""Each analyte's course over several panels: a small table with the therapy start marked."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from b12lab.model import Report, format_number

FLAG_STYLE = {
    "low": "yellow",
    "high": "yellow",
    "normal": "green",
    "critical_low": "bold red",
    "critical_high": "bold red",
}
FLAG_MARK = {"low": "L", "high": "H", "critical_low": "LL", "critical_high": "HH", "normal": ""}
SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARK[3] * len(values)
    return "".join(SPARK[int((v - low) / (high - low) * (len(SPARK) - 1))] for v in values)


def history_table(report: Report) -> Table:
    dates = sorted({p.date for points in report.history.values() for p in points if p.date})
    table = Table(
        title="Course over time",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    table.add_column("analyte")
    start = report.therapy_start
    for date in dates:
        marker = ""
        if start is not None and date >= start:
            marker = f" d{(date - start).days}"
        table.add_column(date.isoformat() + marker, justify="right")
    table.add_column("trend")
    decimals = {m.analyte: m.decimals for m in report.measurements}
    for analyte, points in report.history.items():
        by_date = {p.date: p for p in points}
        cells: list[Text | str] = [analyte]
        for date in dates:
            point = by_date.get(date)
            if point is None:
                cells.append("")
                continue
            text = (point.censored or "") + format_number(point.value, decimals.get(analyte, 1))
            mark = FLAG_MARK.get(point.flag or "", "")
            cells.append(
                Text(
                    text + (f" {mark}" if mark else ""), style=FLAG_STYLE.get(point.flag or "", "")
                )
            )
        cells.append(sparkline([p.value for p in points]))
        table.add_row(*cells)
    if start is not None:
        table.caption = f"B12 therapy started {start.isoformat()} (dN = day N on therapy)"
        table.caption_justify = "left"
    return table
