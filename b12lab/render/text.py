"""The terminal report (rich): the conclusion first, one screen by default.

The default view of a typical panel fits an 80x24 terminal: the conclusion
line (B12 status, urgent count, the first urgent finding), the measurements,
what the B12 status implies for platelets, neutrophils and ferritin, one line
per finding the first line does not name, and a closing line with the panel
date, the tests that would sharpen the picture and the disclaimer. `full=True`
adds the column names, the B12 cut-offs, every finding with its id, detail,
every next step and its evidence.

Color only on a terminal and when NO_COLOR is unset; no line ends with a
space; a word longer than the line wraps, it is never cut.
"""

from __future__ import annotations

import io
import re
import sys
from typing import TextIO

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from b12lab.model import DISCLAIMER, IMPLICATION_DOMAINS, Finding, Report, format_number
from b12lab.render.headline import (
    FLAG_LABEL,
    SEPARATOR,
    SHORT_DISCLAIMER,
    context_parts,
    others_phrase,
    patient_label,
    status_phrase,
)
from b12lab.render.history import FLAG_STYLE, history_table
from b12lab.render.safe import escape_controls

STATUS_STYLE = {
    "deficient": "bold red",
    "borderline": "bold yellow",
    "normal": "bold green",
    "high": "bold cyan",
    "unknown": "bold",
}
SEVERITY_STYLE = {"urgent": "bold red", "advisory": "bold yellow", "info": "bold cyan"}
DOMAIN_TITLE = {"platelets": "Platelets", "neutrophils": "Neutrophils", "ferritin": "Ferritin"}
# Spaces (and only spaces) before the style resets at the end of a line.
_TRAILING = re.compile(r"(?:[ ]|\x1b\[[0-9;]*m)+$")


def _reference(low: float | None, high: float | None, decimals: int) -> str:
    if low is None and high is None:
        return ""
    if low is None:
        return f"<= {format_number(high, decimals)}"
    if high is None:
        return f">= {format_number(low, decimals)}"
    return f"{format_number(low, decimals)}-{format_number(high, decimals)}"


def measurements_table(report: Report, *, header: bool = True) -> Table:
    table = Table(show_header=header, header_style="bold", box=None, pad_edge=False)
    for column in ("analyte", "input", "value", "reference", "flag"):
        table.add_column(column, justify="right" if column == "value" else "left", overflow="fold")
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


def conclusion_text(report: Report) -> Text:
    """The first line: whose, the B12 status, the urgent findings, the other counts."""
    line = Text()
    patient = patient_label(report)
    if patient:
        line.append(f"{patient}: ", style="bold")
    line.append(status_phrase(report), style=STATUS_STYLE[report.b12_status])
    urgent = [f for f in report.findings if f.severity == "urgent"]
    line.append(SEPARATOR)
    if urgent:
        line.append(f"{len(urgent)} urgent: ", style=SEVERITY_STYLE["urgent"])
        line.append(urgent[0].title, style="bold")
    else:
        line.append("no urgent finding")
    others = others_phrase(report)
    if others:
        line.append(SEPARATOR + others)
    return line


def _grid(first_width: int | None = None) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, min_width=first_width)
    grid.add_column(overflow="fold")
    return grid


def implications_grid(report: Report) -> Table:
    grid = _grid()
    for domain in IMPLICATION_DOMAINS:
        implication = report.implications[domain]
        label = Text(DOMAIN_TITLE[domain], style="bold")
        if implication.flag:
            label.append(f" {FLAG_LABEL[implication.flag]}", style=FLAG_STYLE[implication.flag])
        grid.add_row(label, Text(implication.summary))
    return grid


def _finding_text(finding: Finding, with_id: bool) -> Text:
    text = Text(finding.title, style="bold" if finding.severity == "urgent" else "")
    if with_id:
        text.append(f" [{finding.id}]", style="dim")
    return text


def listed_findings(report: Report, full: bool) -> list[Finding]:
    """The findings the list shows: in the one-screen view, all but the urgent one the
    first line already names in full."""
    if full:
        return list(report.findings)
    urgent = [f for f in report.findings if f.severity == "urgent"]
    return [f for f in report.findings if not urgent or f is not urgent[0]]


def findings_grid(report: Report, width: int, *, full: bool = False) -> Table:
    """One row per finding; ids shown when every row fits the width with its id (always
    in the full view), so that the list reads the same from top to bottom."""
    findings = listed_findings(report, full)
    severity_width = max(len(f.severity) for f in findings)
    with_id = full or all(
        severity_width + 1 + len(f.title) + len(f.id) + 3 <= width for f in findings
    )
    grid = _grid(severity_width)
    for finding in findings:
        body: Text | Group = _finding_text(finding, with_id)
        if full:
            lines: list = [body, Text(finding.detail)]
            if finding.next_steps:
                steps = _grid()
                for step in finding.next_steps:
                    steps.add_row("->", Text(step))
                lines.append(steps)
            if finding.evidence:
                evidence = "; ".join(
                    f"{key} {escape_controls(str(value))}"
                    for key, value in finding.evidence.items()
                )
                lines.append(Text(f"evidence: {evidence}", style="dim"))
            body = Group(*lines)
        if full and grid.row_count:
            grid.add_row("", "")
        grid.add_row(Text(finding.severity.upper(), style=SEVERITY_STYLE[finding.severity]), body)
    return grid


def _footer(report: Report) -> Text:
    parts = context_parts(report)
    if report.missing:
        parts.append("would sharpen: " + ", ".join(report.missing))
    line = Text(SEPARATOR.join(parts) + (SEPARATOR if parts else ""))
    line.append(SHORT_DISCLAIMER, style="italic")
    return line


def report_renderable(report: Report, *, width: int = 80, full: bool = False) -> Group:
    parts: list = [conclusion_text(report)]
    if full:
        heading = Text(f"patient {patient_label(report) or '-'}")
        for part in context_parts(report):
            heading.append(SEPARATOR + part)
        heading.append(f"{SEPARATOR}guideline {report.guideline.upper()}")
        if report.guideline_title:
            heading.append(f" ({report.guideline_title})")
        parts.append(heading)
    if report.measurements:
        parts.append(measurements_table(report, header=full))
    else:
        parts.append(Text("No lab values given.", style="dim"))
    if report.history:
        parts.append(history_table(report))
    if full:
        status = Text("B12 status: ", style="bold")
        status.append(report.b12_status.upper(), style=STATUS_STYLE[report.b12_status])
        if report.b12_detail:
            status.append(f"{SEPARATOR}{report.b12_detail}")
        parts.append(status)
    parts.append(implications_grid(report))
    if listed_findings(report, full):
        if full:
            parts.append(Text("Findings", style="bold underline"))
        parts.append(findings_grid(report, width, full=full))
    elif not report.findings:
        parts.append(Text("No findings.", style="bold"))
    for warning in report.warnings:
        parts.append(Text(f"note: {escape_controls(warning)}", style="dim"))
    if full:
        if report.missing:
            parts.append(Text("Would sharpen the picture: " + ", ".join(report.missing)))
        provenance = report.provenance
        if provenance:
            parts.append(
                Text(
                    f"b12lab {provenance.get('b12lab_version', '')}; ranges SHA-256 "
                    f"{provenance.get('ranges_sha256', '')}; evaluated on "
                    f"{provenance.get('evaluated_on', '')}",
                    style="dim",
                )
            )
        parts.append(Text(DISCLAIMER, style="italic"))
    else:
        parts.append(_footer(report))
    return Group(*parts)


def make_console(stream: TextIO | None = None) -> Console:
    """Color only on a terminal and when NO_COLOR is unset (rich honours both)."""
    return Console(file=stream, highlight=False, soft_wrap=False)


def strip_trailing_spaces(text: str) -> str:
    """Every line without the spaces a table pads it with (style codes are kept)."""
    return "\n".join(
        _TRAILING.sub(lambda m: m.group(0).replace(" ", ""), line) for line in text.split("\n")
    )


def _rendered(console: Console, report: Report, full: bool) -> str:
    with console.capture() as capture:
        console.print(report_renderable(report, width=console.width, full=full))
    return strip_trailing_spaces(capture.get())


def text_report(report: Report, *, width: int = 80, full: bool = False) -> str:
    """The plain report (no color) laid out for `width` columns."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, highlight=False, soft_wrap=False
    )
    return _rendered(console, report, full)


def render_text(report: Report, stream: TextIO | None = None, *, full: bool = False) -> None:
    """Write the report to `stream` (stdout), colored when that is a terminal."""
    target = stream if stream is not None else sys.stdout
    target.write(_rendered(make_console(stream), report, full))


def report_text(report: Report, options) -> str:
    """The registry's text format: laid out and colored for where it goes."""
    return _rendered(make_console(options.stream), report, options.full)
