"""The one-screen terminal report (rich): colored on a TTY, plain otherwise."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from b12lab.model import DISCLAIMER, IMPLICATION_DOMAINS, Report, format_number
from b12lab.render.history import FLAG_STYLE, history_table
from b12lab.render.safe import escape_controls

FLAG_LABEL = {
    "low": "LOW",
    "high": "HIGH",
    "normal": "normal",
    "critical_low": "CRIT LOW",
    "critical_high": "CRIT HIGH",
}
STATUS_STYLE = {
    "deficient": "bold red",
    "borderline": "bold yellow",
    "normal": "bold green",
    "high": "bold cyan",
    "unknown": "bold",
}
SEVERITY_STYLE = {
    "urgent": "bold white on red",
    "advisory": "bold black on yellow",
    "info": "bold black on cyan",
}
DOMAIN_TITLE = {"platelets": "Platelets", "neutrophils": "Neutrophils", "ferritin": "Ferritin"}


def _reference(low: float | None, high: float | None, decimals: int) -> str:
    if low is None and high is None:
        return ""
    if low is None:
        return f"<= {format_number(high, decimals)}"
    if high is None:
        return f">= {format_number(low, decimals)}"
    return f"{format_number(low, decimals)}-{format_number(high, decimals)}"


def measurements_table(report: Report) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("analyte", "input", "value", "reference", "flag"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for m in report.measurements:
        note = " (derived)" if m.derived else " (unit assumed)" if m.unit_assumed else ""
        table.add_row(
            m.analyte,
            escape_controls(m.input) + note,
            m.shown(),
            _reference(m.reference_low, m.reference_high, m.decimals),
            Text(FLAG_LABEL.get(m.flag or "", ""), style=FLAG_STYLE.get(m.flag or "", "")),
        )
    return table


def report_renderable(report: Report) -> Group:
    parts: list = []
    heading = Text("b12lab report", style="bold")
    heading.append(f"  patient {escape_controls(report.patient_id or '-')}")
    heading.append(f"  panel {report.panel_date.isoformat() if report.panel_date else '-'}")
    heading.append(f"  guideline {report.guideline.upper()}")
    parts.append(heading)
    if report.measurements:
        parts.append(measurements_table(report))
    else:
        parts.append(Text("No lab values given.", style="dim"))
    if report.history:
        parts.append(Text(""))
        parts.append(history_table(report))
    status = Text("\nB12 status: ", style="bold")
    status.append(report.b12_status.upper(), style=STATUS_STYLE[report.b12_status])
    status.append(f"  {report.b12_detail}")
    if report.therapy_day is not None:
        status.append(f"  (day {report.therapy_day} of B12 therapy)", style="bold")
    parts.append(status)
    for domain in IMPLICATION_DOMAINS:
        implication = report.implications[domain]
        line = Text(f"{DOMAIN_TITLE[domain]}", style="bold")
        if implication.flag:
            line.append(f" [{FLAG_LABEL[implication.flag]}]", style=FLAG_STYLE[implication.flag])
        line.append(f": {implication.summary}")
        parts.append(line)
    parts.append(Text(""))
    if report.findings:
        parts.append(Text("Findings", style="bold underline"))
        for finding in report.findings:
            line = Text()
            line.append(f" {finding.severity.upper()} ", style=SEVERITY_STYLE[finding.severity])
            line.append(f" {finding.title} ", style="bold")
            line.append(f"[{finding.id}]", style="dim")
            parts.append(line)
            parts.append(Padding(Text(finding.detail), (0, 0, 0, 3), expand=False))
            # Every next step of an urgent finding; the first of the others, to keep
            # the report on one screen (markdown and JSON carry them all).
            shown = finding.next_steps if finding.severity == "urgent" else finding.next_steps[:1]
            for number, step in enumerate(shown, start=1):
                text = Text(f"-> {step}")
                hidden = len(finding.next_steps) - len(shown)
                if number == len(shown) and hidden:
                    text.append(f" (+{hidden} more with --format markdown)", style="dim")
                parts.append(Padding(text, (0, 0, 0, 3), expand=False))
    else:
        parts.append(Text("No findings.", style="bold"))
    if report.missing:
        parts.append(Text(""))
        parts.append(Text("Would sharpen the picture: " + ", ".join(report.missing), style="bold"))
    if report.warnings:
        parts.append(Text(""))
        for warning in report.warnings:
            parts.append(Text(f"note: {escape_controls(warning)}", style="dim"))
    parts.append(Text(""))
    parts.append(Text(DISCLAIMER, style="italic dim"))
    return Group(*parts)


def make_console(stream: TextIO | None = None) -> Console:
    """Color only on a terminal and when NO_COLOR is unset (rich honours both)."""
    return Console(file=stream, highlight=False, soft_wrap=False)


def render_text(report: Report, stream: TextIO | None = None) -> None:
    make_console(stream).print(report_renderable(report))
