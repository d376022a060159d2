"""The conclusion of a report in one line, shared by the text and HTML reports.

`B12 DEFICIENT (WHO) · 1 urgent: Pancytopenia with low B12: ... · 5 advisory · 2 info`:
the B12 status, how many findings are urgent and the first urgent one by
title, then the counts of the other severities. Nothing here is rich or
jinja2, so either renderer can use it.
"""

from __future__ import annotations

from b12lab.model import SEVERITIES, Report
from b12lab.render.safe import escape_controls

SEPARATOR = " · "
FLAG_LABEL = {  # a flag as the text and HTML reports print it
    "low": "LOW",
    "high": "HIGH",
    "normal": "normal",
    "critical_low": "CRIT LOW",
    "critical_high": "CRIT HIGH",
}
SHORT_DISCLAIMER = "Decision support, not a diagnosis."


def severity_counts(report: Report) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in report.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    return counts


def status_phrase(report: Report) -> str:
    """`B12 DEFICIENT (WHO)`: a status means something only with the cut-offs behind it."""
    return f"B12 {report.b12_status.upper()} ({report.guideline.upper()})"


def urgent_phrase(report: Report) -> str:
    urgent = [f for f in report.findings if f.severity == "urgent"]
    if not urgent:
        return "no urgent finding"
    return f"{len(urgent)} urgent: {urgent[0].title}"


def others_phrase(report: Report) -> str:
    """`5 advisory · 2 info`, or empty when there are none."""
    counts = severity_counts(report)
    return SEPARATOR.join(
        f"{counts[severity]} {severity}" for severity in ("advisory", "info") if counts[severity]
    )


def conclusion(report: Report) -> str:
    parts = [status_phrase(report), urgent_phrase(report)]
    others = others_phrase(report)
    if others:
        parts.append(others)
    return SEPARATOR.join(parts)


def context_parts(report: Report) -> list[str]:
    """When: `panel 2026-11-02`, `day 63 of B12 therapy`."""
    parts = []
    if report.panel_date is not None:
        parts.append(f"panel {report.panel_date.isoformat()}")
    if report.therapy_day is not None:
        parts.append(f"day {report.therapy_day} of B12 therapy")
    return parts


def patient_label(report: Report) -> str | None:
    return escape_controls(report.patient_id) if report.patient_id else None
