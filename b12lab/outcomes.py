"""Outcomes of many panels, each distinct decision computed once.

A CSV row of `b12lab batch` shows only the discrete part of a report: B12
status, flags, finding ids and severities, missing tests. Those depend on a
value only through its position among the limits the data file attaches to
its analyte (`Limits.cut_points`), and each domain's rules see only the
analytes that domain reads (`DOMAIN_READS`). So a domain's result is looked
up by (limits, B12 assessment, context, positions of the analytes it reads),
and computed by the engine's own `run_domain` the first time a key is seen.
There is no second copy of the clinical logic here, only look-ups.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from operator import itemgetter

from b12lab.engine import _position, derive_anc, flag_for, run_domain
from b12lab.model import DOMAINS, IMPLICATION_DOMAINS, SEVERITIES, Panel, Report
from b12lab.ranges import Limits, Ranges
from b12lab.rules import DOMAIN_READS, Case
from b12lab.rules.b12 import assess_b12, assess_for_rules

ALWAYS_WANTED = ("b12", "platelets", "anc", "ferritin")
MEMO_SIZE = 4096  # entries per look-up table; a full table is cleared, so memory stays flat
_CENSOR = {None: 0, "<": 1, ">": 2}
_SEVERITY = {s: i for i, s in enumerate(SEVERITIES)}


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


@dataclass(frozen=True)
class _DomainResult:
    serial: int  # unique for the run (never reused after a table is cleared)
    findings: tuple[tuple[str, str, str], ...]  # (id, severity, domain)
    wanted: tuple[str, ...]


def _bounded_set(table: dict, key, value):
    if len(table) >= MEMO_SIZE:
        table.clear()
    table[key] = value
    return value


class OutcomeCache:
    def __init__(self, ranges: Ranges, guideline: str | None, today: dt.date):
        self.ranges = ranges
        self.guideline = guideline
        self.today = today
        self.analytes = tuple(ranges.analytes)
        index = {a: i for i, a in enumerate(self.analytes)}
        self._reads = [
            (number, itemgetter(*sorted(index[a] for a in DOMAIN_READS[domain])), domain)
            for number, domain in enumerate(DOMAINS)
        ]
        self._flag_of = [
            (domain, [index[a] for a in names])
            for domain, names in zip(
                IMPLICATION_DOMAINS, (("platelets",), ("anc", "wbc"), ("ferritin",)), strict=True
            )
        ]
        self._b12_inputs = itemgetter(*(index[a] for a in _B12_INPUTS))
        self._serials = itertools.count()
        self._limits: dict[tuple, tuple[Limits, int]] = {}
        self._limits_tokens: dict[tuple, int] = {}
        self._codes: dict[tuple, int] = {}
        self._flags: dict[tuple, str] = {}
        self._assessments: dict[tuple, tuple] = {}
        self._domains: dict[tuple, _DomainResult] = {}
        self._outcomes: dict[tuple, Outcome] = {}

    def _limits_for(self, panel: Panel) -> tuple[Limits, int]:
        trimester = panel.context.pregnancy_trimester
        key = (panel.sex, panel.age, trimester)
        found = self._limits.get(key)
        if found is None:
            limits = self.ranges.limits(panel.sex, panel.age, self.guideline, trimester)
            token = self._limits_tokens.setdefault(limits.key, len(self._limits_tokens))
            found = _bounded_set(self._limits, key, (limits, token))
        return found

    def outcome(self, panel: Panel) -> Outcome:
        limits, token = self._limits_for(panel)
        if "anc" not in panel.measurements and "wbc" in panel.measurements:
            panel, _ = derive_anc(panel, self.ranges)
        measurements = panel.measurements
        codes: list[int | None] = [None] * len(self.analytes)
        for number, analyte in enumerate(self.analytes):
            measurement = measurements.get(analyte)
            if measurement is None:
                continue
            key = (token, analyte, measurement.value, measurement.censored)
            code = self._codes.get(key)
            if code is None:
                position = _position(measurement.value, limits.cut_points(analyte))
                code = _bounded_set(self._codes, key, position * 3 + _CENSOR[measurement.censored])
            codes[number] = code
        context = panel.context
        days = _days(panel, self.today)
        days_code = None if days is None else _position(days, limits.cut_points("days"))
        situation = (
            token,
            context.alcohol_use,
            context.neuro_symptoms,
            context.hypersegmented_neutrophils,
            days_code,
        )

        # On therapy a B12 on the panel reflects the replacement (no history here).
        on_therapy = days is not None and days >= 0
        b12_key = (token, self._b12_inputs(codes), on_therapy)
        assessed = self._assessments.get(b12_key)
        if assessed is None:
            serum, _ = assess_b12(panel, limits)
            for_rules = assess_for_rules(panel, limits, serum, (), self.today)
            # A serial, not the table's size: tokens must never repeat after a clear.
            assessed = _bounded_set(
                self._assessments, b12_key, (serum, for_rules, next(self._serials))
            )
        serum, assessment, assessment_token = assessed

        case: Case | None = None
        results = []
        for number, getter, domain in self._reads:
            key = (number, assessment_token, situation, getter(codes))
            result = self._domains.get(key)
            if result is None:
                if case is None:
                    flags = {a: flag_for(m, limits)[0] for a, m in measurements.items()}
                    case = Case(panel, limits, assessment, flags, self.today, (), serum=serum)
                findings, wanted = run_domain(domain, case)
                result = _bounded_set(
                    self._domains,
                    key,
                    _DomainResult(
                        next(self._serials),
                        tuple((f.id, f.severity, f.domain) for f in findings),
                        tuple(wanted),
                    ),
                )
            results.append(result)

        flags = tuple(
            self._flag(limits, token, codes, indices, measurements) for _, indices in self._flag_of
        )
        present = frozenset(measurements)
        outcome_key = (tuple(r.serial for r in results), flags, present, serum.status)
        outcome = self._outcomes.get(outcome_key)
        if outcome is None:
            outcome = _bounded_set(
                self._outcomes, outcome_key, self._merge(results, flags, present, serum.status)
            )
        return outcome

    def _flag(self, limits, token, codes, indices, measurements) -> str | None:
        for index in indices:
            code = codes[index]
            if code is None:
                continue
            analyte = self.analytes[index]
            key = (token, analyte, code)
            flag = self._flags.get(key)
            if flag is None:
                flag = _bounded_set(self._flags, key, flag_for(measurements[analyte], limits)[0])
            return flag
        return None

    def _merge(self, results, flags, present, status) -> Outcome:
        findings = sorted(
            (f for result in results for f in result.findings),
            key=lambda f: _SEVERITY[f[1]],
        )
        wanted = {a for result in results for a in result.wanted}
        wanted.update(a for a in ALWAYS_WANTED if a not in present)
        per_domain = tuple(
            tuple(f[0] for f in findings if f[2] == domain) for domain in IMPLICATION_DOMAINS
        )
        return Outcome(
            b12_status=status,
            flags=flags,
            domain_findings=per_domain,
            other_findings=tuple(f[0] for f in findings if f[2] not in IMPLICATION_DOMAINS),
            severities=tuple(f[1] for f in findings),
            missing=tuple(a for a in self.analytes if a in wanted and a not in present),
        )


_B12_INPUTS = ("b12", "mma", "homocysteine", "folate", "holotc", "egfr")


def _days(panel: Panel, today: dt.date) -> int | None:
    """Days on therapy exactly as the rules' Case counts them."""
    context = panel.context
    if context.b12_therapy_start is not None:
        return ((panel.date or today) - context.b12_therapy_start).days
    return context.days_on_therapy
