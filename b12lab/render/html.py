"""A printable HTML report: one self-contained page with a trend plot per analyte.

The page comes from a jinja2 template with autoescaping on, so every value
that came from the input is escaped; the plots are matplotlib figures written
as inline SVG. Nothing on the page points outside it (no scripts, style
sheets, fonts or images to fetch), it prints on A4, and it reads in grayscale:
line styles, marker shapes and hatching carry the meaning, never colour alone.

Rendering is deterministic: fixed SVG ids (`svg.hashsalt`), no creation date
in the SVG, nothing from the clock that `--as-of` does not set.

jinja2 and matplotlib are imported here only, so that the other formats never
load them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from b12lab.model import DISCLAIMER, IMPLICATION_DOMAINS, HistoryPoint, Report, format_number
from b12lab.render.headline import FLAG_LABEL, conclusion, context_parts, severity_counts
from b12lab.render.safe import escape_controls

# Marker shapes and fills tell a flag without colour.
MARKER = {
    "normal": ("o", "white"),
    "low": ("v", "black"),
    "high": ("^", "black"),
    "critical_low": ("v", "black"),
    "critical_high": ("^", "black"),
}
CUT_STYLES = ((0, (5, 2)), (0, (1, 1.5)), (0, (5, 1.5, 1, 1.5)), (0, (2, 2)))
THERAPY_STYLE = (0, (8, 2, 2, 2))
SVG_RC = {
    "svg.hashsalt": "b12lab",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 8,
    "axes.edgecolor": "0.3",
    "axes.linewidth": 0.6,
    "hatch.color": "0.6",
    "hatch.linewidth": 0.5,
}
_UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class CutOff:
    value: float
    label: str


@dataclass(frozen=True)
class TrendPlot:
    analyte: str
    title: str
    svg: str  # inline <svg> markup made by matplotlib


def _reference_text(low: float | None, high: float | None, decimals: int, unit: str) -> str:
    if low is None and high is None:
        return ""
    if low is None:
        return f"<= {format_number(high, decimals)} {unit}"
    if high is None:
        return f">= {format_number(low, decimals)} {unit}"
    return f"{format_number(low, decimals)}-{format_number(high, decimals)} {unit}"


def decision_cut_offs(report: Report, ranges, analyte: str) -> list[CutOff]:
    """The levels the rules compare `analyte` with, beyond its reference interval: the
    profile's B12 and holoTC cut-offs, the data file's thresholds, the critical limits."""
    from b12lab.ranges import PROFILE_KEYS, THRESHOLD_KEYS

    limits = ranges.limits(None, None, report.guideline)
    found: dict[float, str] = {}

    def add(value: float | None, label: str) -> None:
        if value is not None and value not in found:
            found[value] = label

    spec = limits.analytes.get(analyte)
    for key, owner in PROFILE_KEYS.items():
        if owner == analyte:
            name = key.removeprefix(f"{analyte}_").removesuffix("_below").replace("_", " ")
            value = getattr(limits.profile, key).value
            add(value, f"{name} < {format_number(value, spec.decimals if spec else 1)}")
    for key, owner in THRESHOLD_KEYS.items():
        # only levels of the analyte itself; rises, percentages and days are not levels
        if owner != analyte or not key.endswith(("_below", "_above")):
            continue
        value = limits.threshold(key)
        name = key.removeprefix(f"{analyte}_").rsplit("_", 1)[0].replace("_", " ")
        name = re.sub(r"grade(\d)", r"grade \1", name)
        sign = "<" if key.endswith("_below") else ">"
        add(value, f"{name} {sign} {format_number(value, spec.decimals if spec else 1)}")
    if spec is not None:
        add(spec.critical_low, f"critical < {format_number(spec.critical_low or 0, spec.decimals)}")
        add(
            spec.critical_high,
            f"critical >= {format_number(spec.critical_high or 0, spec.decimals)}",
        )
    return [CutOff(value, label) for value, label in sorted(found.items())]


def _reference_band(report: Report, ranges, analyte: str) -> tuple[float | None, float | None]:
    """The interval the report judged the analyte by; the adult default for an analyte
    measured only on an earlier panel (the report does not carry sex and age)."""
    for m in report.measurements:
        if m.analyte == analyte:
            return m.reference_low, m.reference_high
    band = ranges.limits(None, None, report.guideline).reference.get(analyte)
    return (band.low, band.high) if band is not None else (None, None)


def _svg_inline(svg: str, prefix: str) -> str:
    """matplotlib's SVG document as markup to put in a page: no XML prologue, no
    metadata or comments, every id prefixed so that several plots share one page."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{prefix}-\1"', svg)
    svg = re.sub(r'(?<![:\w])href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    return svg.strip()


def _trend_svg(
    report: Report,
    ranges,
    analyte: str,
    points: list[HistoryPoint],
    unit: str,
    decimals: int,
) -> str:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    dated = [p for p in points if p.date is not None]
    xs = [mdates.date2num(p.date) for p in dated]
    ys = [p.value for p in dated]
    low, high = _reference_band(report, ranges, analyte)
    span = [*ys, *(v for v in (low, high) if v is not None)]
    y_min, y_max = min(span), max(span)
    pad = (y_max - y_min) * 0.12 or abs(y_max) * 0.1 or 1.0
    y_lo, y_hi = max(0.0, y_min - pad) if y_min >= 0 else y_min - pad, y_max + pad
    x_all = list(xs)
    start = report.therapy_start
    if start is not None:
        x_all.append(mdates.date2num(start))
    x_pad = max((max(x_all) - min(x_all)) * 0.06, 2.0)

    with matplotlib.rc_context(SVG_RC):
        figure = Figure(figsize=(6.4, 2.35))
        axes = figure.add_axes((0.09, 0.2, 0.6, 0.7))
        handles = []
        if low is not None or high is not None:
            axes.axhspan(
                low if low is not None else y_lo,
                high if high is not None else y_hi,
                facecolor="0.9",
                edgecolor="0.55",
                hatch="//",
                linewidth=0.5,
            )
            handles.append(
                Patch(
                    facecolor="0.9",
                    edgecolor="0.55",
                    hatch="//",
                    label=f"reference {_reference_text(low, high, decimals, '')}".rstrip(),
                )
            )
        cut_offs = [c for c in decision_cut_offs(report, ranges, analyte) if y_lo < c.value < y_hi]
        for number, cut in enumerate(cut_offs):
            style = CUT_STYLES[number % len(CUT_STYLES)]
            axes.axhline(cut.value, color="0.2", linewidth=0.9, linestyle=style)
            handles.append(
                Line2D([], [], color="0.2", linewidth=0.9, linestyle=style, label=cut.label)
            )
        axes.plot(xs, ys, color="black", linewidth=1.3, zorder=3)
        shown_flags = []
        for x, point in zip(xs, dated, strict=True):
            shape, fill = MARKER.get(point.flag or "normal", MARKER["normal"])
            size = 7.5 if (point.flag or "").startswith("critical") else 6
            axes.plot(
                [x],
                [point.value],
                marker=shape,
                markersize=size,
                markerfacecolor=fill,
                markeredgecolor="black",
                linestyle="none",
                zorder=4,
            )
            label = "in range" if (point.flag or "normal") == "normal" else FLAG_LABEL[point.flag]
            if (shape, fill, label) not in shown_flags:
                shown_flags.append((shape, fill, label))
        for shape, fill, label in shown_flags:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker=shape,
                    markerfacecolor=fill,
                    markeredgecolor="black",
                    linestyle="none",
                    label=label,
                )
            )
        if start is not None:
            x_start = mdates.date2num(start)
            axes.axvline(x_start, color="black", linewidth=1.0, linestyle=THERAPY_STYLE)
            handles.append(
                Line2D(
                    [],
                    [],
                    color="black",
                    linewidth=1.0,
                    linestyle=THERAPY_STYLE,
                    label="B12 therapy start",
                )
            )
        axes.set_xlim(min(x_all) - x_pad, max(x_all) + x_pad)
        axes.set_ylim(y_lo, y_hi)
        axes.set_xticks(xs)
        axes.set_xticklabels([p.date.isoformat() for p in dated], fontsize=7)
        axes.set_ylabel(unit)
        axes.grid(axis="y", color="0.85", linewidth=0.4)
        axes.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=6.5,
            frameon=False,
            borderaxespad=0.0,
        )
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "b12lab"})
    return buffer.getvalue()


def trend_plots(report: Report, ranges) -> list[TrendPlot]:
    """One plot per analyte with at least two dated values."""
    plots = []
    decimals = {m.analyte: m.decimals for m in report.measurements}
    for analyte, points in report.history.items():
        dated = [p for p in points if p.date is not None]
        if len({p.date for p in dated}) < 2:
            continue
        spec = ranges.analytes.get(analyte)
        unit = spec.canonical_unit if spec else ""
        title = f"{spec.name if spec else analyte} ({unit})" if unit else analyte
        svg = _trend_svg(
            report,
            ranges,
            analyte,
            dated,
            unit,
            decimals.get(analyte, spec.decimals if spec else 1),
        )
        prefix = "plot-" + _UNSAFE_IN_ID.sub("-", analyte)
        plots.append(TrendPlot(analyte, title, _svg_inline(svg, prefix)))
    return plots


def _history_rows(report: Report) -> tuple[list[str], list[dict]]:
    dates = sorted({p.date for points in report.history.values() for p in points if p.date})
    start = report.therapy_start
    headers = [
        d.isoformat() + (f" (day {(d - start).days})" if start and d >= start else "")
        for d in dates
    ]
    decimals = {m.analyte: m.decimals for m in report.measurements}
    rows = []
    for analyte, points in report.history.items():
        by_date = {p.date: p for p in points}
        cells = []
        for date in dates:
            point = by_date.get(date)
            if point is None:
                cells.append({"text": "", "flag": None})
                continue
            text = (point.censored or "") + format_number(point.value, decimals.get(analyte, 1))
            flag = point.flag if point.flag and point.flag != "normal" else None
            cells.append({"text": text, "flag": FLAG_LABEL[flag] if flag else None})
        rows.append({"analyte": analyte, "cells": cells})
    return headers, rows


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("b12lab", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Report, ranges) -> str:
    from markupsafe import Markup

    history_headers, history_rows = _history_rows(report) if report.history else ([], [])
    measurements = [
        {
            "analyte": m.analyte,
            "input": escape_controls(m.input),
            "value": (m.censored or "") + format_number(m.value, m.decimals),
            "unit": m.unit,
            "flag": FLAG_LABEL.get(m.flag or "", ""),
            "abnormal": m.flag not in (None, "normal"),
            "reference": _reference_text(m.reference_low, m.reference_high, m.decimals, m.unit),
            "note": "derived" if m.derived else "unit assumed" if m.unit_assumed else "",
        }
        for m in report.measurements
    ]
    plots = [
        {"title": p.title, "svg": Markup(p.svg)}  # matplotlib's own markup, not input text
        for p in trend_plots(report, ranges)
    ]
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            patient=escape_controls(report.patient_id) if report.patient_id else None,
            conclusion=escape_controls(conclusion(report)),
            context=context_parts(report),
            counts=severity_counts(report),
            measurements=measurements,
            implications=[
                {
                    "domain": domain.capitalize(),
                    "flag": FLAG_LABEL.get(report.implications[domain].flag or "", ""),
                    "summary": report.implications[domain].summary,
                    "findings": report.implications[domain].findings,
                }
                for domain in IMPLICATION_DOMAINS
            ],
            findings=report.findings,
            history_headers=history_headers,
            history_rows=history_rows,
            plots=plots,
            warnings=[escape_controls(w) for w in report.warnings],
            provenance=report.provenance,
            disclaimer=DISCLAIMER,
            therapy_start=report.therapy_start,
        )
    )
    return "\n".join(line.rstrip() for line in page.split("\n"))


def report_html(report: Report, options) -> str:
    """The registry's html format."""
    return render_html(report, options.ranges)


__all__ = ["TrendPlot", "decision_cut_offs", "render_html", "report_html", "trend_plots"]
