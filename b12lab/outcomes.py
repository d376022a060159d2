"""The discrete part of a report: what a CSV row of `b12lab batch` shows.

It is computed from the Report by `Outcome.of`, so batch and interpret cannot
disagree about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from b12lab.model import IMPLICATION_DOMAINS, SEVERITIES, Report


@dataclass(frozen=True)
class Outcome:
    """The discrete part of a report: what a CSV row of `b12lab batch` shows."""

    b12_status: str
    flags: tuple[str | None, ...]  # per implication domain
    domain_findings: tuple[tuple[str, ...], ...]  # per implication domain
    other_findings: tuple[str, ...]
    severities: tuple[str, ...]  # one per finding, in report order
    missing: tuple[str, ...]

    @classmethod
    def of(cls, report: Report) -> Outcome:
        implications = [report.implications[d] for d in IMPLICATION_DOMAINS]
        in_domains = {i for imp in implications for i in imp.findings}
        return cls(
            b12_status=report.b12_status,
            flags=tuple(imp.flag for imp in implications),
            domain_findings=tuple(imp.findings for imp in implications),
            other_findings=tuple(f.id for f in report.findings if f.id not in in_domains),
            severities=tuple(f.severity for f in report.findings),
            missing=report.missing,
        )

    @property
    def highest_severity(self) -> str | None:
        return next((s for s in SEVERITIES if s in self.severities), None)
