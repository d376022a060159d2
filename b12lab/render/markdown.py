"""A Markdown report for pasting into a clinical note."""

from __future__ import annotations

import re

from b12lab.model import DISCLAIMER, IMPLICATION_DOMAINS, Report, format_number
from b12lab.render.safe import escape_controls

_ACTIVE = re.compile(r"([\\`*_\[\]<>|#&!])")  # what Markdown or HTML would act on


def _cell(text: str) -> str:
    """Text from the input (or quoting it) as plain Markdown text: a patient id such as
    `<script>` or `[x](javascript:...)` is shown, never run or linked."""
    return escape_controls(_ACTIVE.sub(r"\\\1", text.replace("\n", " ")))


def render_markdown(report: Report) -> str:
    lines = [
        f"## b12lab report: patient {_cell(report.patient_id or '-')}, panel "
        f"{report.panel_date.isoformat() if report.panel_date else '-'}",
        "",
        f"Guideline profile: **{report.guideline.upper()}** ({report.guideline_title})",
        "",
        "| analyte | input | value | reference | flag |",
        "|---|---|---|---|---|",
    ]
    for m in report.measurements:
        low = "" if m.reference_low is None else format_number(m.reference_low, m.decimals)
        high = "" if m.reference_high is None else format_number(m.reference_high, m.decimals)
        reference = f"{low}-{high}" if low or high else ""
        input_text = m.input + (" (derived)" if m.derived else "")
        lines.append(
            f"| {m.analyte} | {_cell(input_text)} | {_cell(m.shown())} | {reference} | "
            f"{m.flag or ''} |"
        )
    lines += ["", f"**B12 status: {report.b12_status}** ({_cell(report.b12_detail)})", ""]
    if report.therapy_day is not None:
        lines += [f"**Therapy:** day {report.therapy_day} of B12 therapy", ""]
    for domain in IMPLICATION_DOMAINS:
        implication = report.implications[domain]
        flag = f" ({implication.flag})" if implication.flag else ""
        lines.append(f"- **{domain.capitalize()}**{flag}: {_cell(implication.summary)}")
    lines.append("")
    if report.history:
        lines += ["### Course over time", ""]
        for analyte, points in report.history.items():
            course = ", ".join(
                f"{p.date.isoformat() if p.date else '?'}: {p.censored or ''}{p.value:g}"
                + (f" ({p.flag})" if p.flag and p.flag != "normal" else "")
                for p in points
            )
            lines.append(f"- {analyte}: {course}")
        if report.therapy_start:
            lines.append(f"- B12 therapy started {report.therapy_start.isoformat()}")
        lines.append("")
    lines += ["### Findings", ""]
    if not report.findings:
        lines.append("None.")
    for finding in report.findings:
        lines.append(f"- **{finding.severity.upper()}**: {finding.title} (`{finding.id}`)  ")
        lines.append(f"  {_cell(finding.detail)}")
        for step in finding.next_steps:
            lines.append(f"  - {_cell(step)}")
    lines.append("")
    if report.missing:
        lines += [f"**Would sharpen the picture:** {', '.join(report.missing)}", ""]
    if report.warnings:
        lines += ["Notes:", *[f"- {_cell(w)}" for w in report.warnings], ""]
    lines.append(f"_{DISCLAIMER}_")
    if report.provenance:
        p = report.provenance
        lines += [
            "",
            f"<sub>b12lab {p.get('b12lab_version', '')}; ranges SHA-256 "
            f"{p.get('ranges_sha256', '')}; guideline {p.get('guideline', '')}; evaluated on "
            f"{p.get('evaluated_on', '')}</sub>",
        ]
    return "\n".join(lines) + "\n"
