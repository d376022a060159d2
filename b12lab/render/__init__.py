"""The report formats: one registry, from which `interpret --format` takes its choices.

A format is a name, a line of help and the dotted path of a function
`(report, RenderOptions) -> str`. The module behind a format is imported only
when that format is asked for, so a one-patient text report never loads the
HTML renderer's templating and plotting libraries. Adding a format touches
this folder only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TextIO


@dataclass(frozen=True)
class RenderOptions:
    """What a renderer may need beyond the report."""

    ranges: Any  # the ranges in force (b12lab.ranges.Ranges)
    full: bool = False  # every detail, next step and piece of evidence (text)
    stream: TextIO | None = None  # where the result goes: text colors itself for a terminal


@dataclass(frozen=True)
class ReportFormat:
    name: str
    help: str
    function: str  # "module:function"

    def render(self, report, options: RenderOptions) -> str:
        module, _, function = self.function.partition(":")
        return getattr(import_module(module), function)(report, options)


def json_report(report, options: RenderOptions) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def fhir_report(report, options: RenderOptions) -> str:
    from b12lab.render.fhir import report_bundle

    return json.dumps(report_bundle(report, options.ranges), indent=2, ensure_ascii=False) + "\n"


def cds_hooks_report(report, options: RenderOptions) -> str:
    from b12lab.render.cds_hooks import report_cards

    return json.dumps(report_cards(report), indent=2, ensure_ascii=False) + "\n"


def markdown_report(report, options: RenderOptions) -> str:
    from b12lab.render.markdown import render_markdown

    return render_markdown(report)


REPORT_FORMATS: dict[str, ReportFormat] = {
    f.name: f
    for f in (
        ReportFormat(
            "text",
            "text (default on a terminal; --full for every detail)",
            "b12lab.render.text:report_text",
        ),
        ReportFormat("json", "json (default in a pipe)", "b12lab.render:json_report"),
        ReportFormat("markdown", "markdown", "b12lab.render:markdown_report"),
        ReportFormat(
            "html",
            "html (one printable, self-contained page with trend plots; use -o FILE)",
            "b12lab.render.html:report_html",
        ),
        ReportFormat("fhir", "fhir (a FHIR R4 Bundle)", "b12lab.render:fhir_report"),
        ReportFormat("cds-hooks", "cds-hooks (CDS Hooks cards)", "b12lab.render:cds_hooks_report"),
    )
}


def render_report(name: str, report, options: RenderOptions) -> str:
    """The report in format `name` (a key of REPORT_FORMATS)."""
    return REPORT_FORMATS[name].render(report, options)
