"""A Report as CDS Hooks cards: one card per finding, most severe first."""

from __future__ import annotations

import uuid
from typing import Any

from b12lab.model import SEVERITIES, Report

INDICATORS = {"urgent": "critical", "advisory": "warning", "info": "info"}
SUMMARY_LIMIT = 140
FINDING_SYSTEM = "urn:b12lab:finding"
_NAMESPACE = uuid.UUID("0c7e4f38-1a55-4b8a-a2f6-5d6b9e3c7a21")


def report_cards(report: Report) -> dict[str, Any]:
    """{"cards": [...]}; with no finding, one info card carries the B12 status."""
    findings = sorted(report.findings, key=lambda f: SEVERITIES.index(f.severity))
    cards = [_finding_card(report, finding) for finding in findings]
    if not cards:
        from b12lab.render.fhir import conclusion

        cards.append(
            {
                "uuid": _uuid(report, "status"),
                "summary": _short(f"Vitamin B12 status: {report.b12_status}; no findings"),
                "indicator": "info",
                "detail": conclusion(report),
                "source": _source(),
            }
        )
    return {"cards": cards}


def _finding_card(report: Report, finding) -> dict[str, Any]:
    detail = [finding.detail]
    if finding.next_steps:
        detail.append("Next steps:\n" + "\n".join(f"- {step}" for step in finding.next_steps))
    if finding.evidence:
        detail.append(
            "Evidence: " + "; ".join(f"{name} {value}" for name, value in finding.evidence.items())
        )
    return {
        "uuid": _uuid(report, finding.id),
        "summary": _short(finding.title),
        "indicator": INDICATORS[finding.severity],
        "detail": "\n\n".join(detail),
        "source": _source({"system": FINDING_SYSTEM, "code": finding.id, "display": finding.title}),
    }


def _source(topic: dict[str, str] | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"label": "b12lab"}
    if topic is not None:
        source["topic"] = topic
    return source


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def _uuid(report: Report, key: str) -> str:
    seed = f"{report.patient_id or ''}|{report.panel_date or ''}|{key}"
    return str(uuid.uuid5(_NAMESPACE, seed))
