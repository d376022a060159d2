"""Runs the rule catalogue over a Panel and returns a Report.

Flags, B12 status and ANC derivation happen here, once, before any rule runs;
rules then only read the Case.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Callable, Sequence
from functools import lru_cache

from b12lab.derived import derive
from b12lab.model import (
    DOMAINS,
    SEVERITIES,
    Finding,
    Measurement,
    Panel,
    Report,
    display_decimals,
    evolve,
    format_number,
)
from b12lab.ranges import SEXES, Limits, Ranges
from b12lab.rules import DOMAIN_READS, RULES_BY_DOMAIN, Case, Fired, Missing, Rule
from b12lab.rules.b12_status import assess_b12, assess_for_rules
from b12lab.rules.base import AskTests, Step, above, at_least, at_most, at_or_above, below
from b12lab.rules.catalogue import in_force
from b12lab.rules.data import outcomes
from b12lab.rules.implications import implications

ALWAYS_WANTED = ("b12", "platelets", "anc", "ferritin")
# One domain's findings and wanted tests for a case: `run_domain`, or a caller's
# equivalent (b12lab.decision remembers them per what the domain's rules see).
DomainRunner = Callable[[str, Case, bool], tuple[Sequence[Finding], Sequence[str]]]


def flag_for(measurement: Measurement, limits: Limits) -> tuple[str, str | None]:
    """The measurement's flag, and a warning when a censored value straddles a limit."""
    analyte = measurement.analyte
    low, high = limits.low(analyte), limits.high(analyte)
    if below(measurement, limits.critical_low(analyte)):
        return "critical_low", None
    if at_or_above(measurement, limits.critical_high(analyte)):
        return "critical_high", None
    if below(measurement, low):
        return "low", None
    if above(measurement, high):
        return "high", None
    if not measurement.censored:
        return "normal", None
    # Neither side is known: say which limits the censored range spans.
    spec = limits.analytes[analyte]
    spanned = []
    if low is not None and low > 0 and not at_least(measurement, low):
        spanned.append(f"lower limit {format_number(low, spec.decimals)}")
    if high is not None and not at_most(measurement, high):
        spanned.append(f"upper limit {format_number(high, spec.decimals)}")
    if not spanned:
        return "normal", None
    return "normal", (
        f"{analyte}: censored result {measurement.input} straddles the "
        f"{' and the '.join(spanned)} {spec.canonical_unit}; flagged normal"
    )


# The side of the reference interval a laboratory's own flag states (HL7 table 0078,
# v3-ObservationInterpretation). Other codes (A, AA, <, >, ...) are not compared.
LAB_FLAG_SIDES = {"L": "low", "LL": "low", "N": "normal", "H": "high", "HH": "high"}
FLAG_SIDES = {
    "critical_low": "low",
    "low": "low",
    "normal": "normal",
    "high": "high",
    "critical_high": "high",
}


def lab_flag_disagreement(measurement: Measurement, flag: str) -> str | None:
    """A warning when the laboratory's flag puts the value on another side than b12lab's.

    The two may use different reference intervals; the reader should know that
    they disagree and see both.
    """
    if not measurement.lab_flag:
        return None
    lab_flag = measurement.lab_flag.strip().upper()
    lab_side = LAB_FLAG_SIDES.get(lab_flag)
    if lab_side is None or lab_side == FLAG_SIDES.get(flag):
        return None
    reference = f" (its range {measurement.lab_reference})" if measurement.lab_reference else ""
    return (
        f"{measurement.analyte}: the laboratory flags {measurement.input} as {lab_flag}"
        f"{reference}, b12lab flags it {flag}; check which reference interval applies"
    )


def shown_against(panel: Panel, limits: Limits) -> Panel:
    """Each value carries the decimals that show on which side of its limits it lies."""
    measurements = {}
    for analyte, measurement in panel.measurements.items():
        places = display_decimals(
            measurement.value, measurement.decimals, limits.cut_points(analyte)
        )
        measurements[analyte] = (
            measurement if places == measurement.decimals else evolve(measurement, decimals=places)
        )
    return evolve(panel, measurements=measurements)


@lru_cache(maxsize=1024)
def _sex_dependent(ranges: Ranges, age: float | None, trimester: int | None) -> frozenset[str]:
    """Analytes whose interval at this age (and trimester) differs between the sexes."""
    return frozenset(
        analyte
        for analyte, spec in ranges.analytes.items()
        if spec.sex_dependent and len({spec.band(s, age, trimester) for s in (None, *SEXES)}) > 1
    )


def _context_warnings(
    panel: Panel, ranges: Ranges, today: dt.date, limits: Limits | None = None
) -> list[str]:
    warnings = []
    if limits is not None and limits.below_profile_age and limits.profile.minimum_age:
        youngest = format_number(limits.profile.minimum_age.value, 0)
        warnings.append(
            f"age under {youngest}: the {limits.profile.name.upper()} profile (its guideline) "
            f"covers people aged {youngest} and "
            "over, so its B12 cut-offs were applied outside its scope; consider --guideline who"
        )
    trimester = panel.context.pregnancy_trimester
    by_sex = _sex_dependent(ranges, panel.age, trimester)
    sex_dependent = [a for a in panel.measurements if a in by_sex]
    if panel.sex is None and sex_dependent:
        warnings.append(
            f"sex not given: {', '.join(sex_dependent)} judged against the widest adult "
            "interval; give --sex for sex-specific limits"
        )
    if panel.date is not None and panel.date > today:
        # A typo (2062) or an evaluation date before the panels: in a timeline such a
        # panel would also be taken for the latest.
        # The date itself is in the record beside the warning: the warning does not
        # quote it, so panels that decide alike share it.
        warnings.append(
            f"the panel date is after the evaluation date {today.isoformat()} "
            "(today, or --as-of): check the date"
        )
    start = panel.context.b12_therapy_start
    panel_date = panel.date or today
    if start is not None and start > panel_date:
        warnings.append(
            f"B12 therapy start {start.isoformat()} is after the panel date "
            f"{panel_date.isoformat()}: this panel counts as before therapy"
        )
    unbanded = ranges.limits(panel.sex, panel.age, None, trimester).unbanded
    for analyte in panel.measurements:
        if analyte in unbanded:
            warnings.append(
                f"{analyte}: no reference interval for age {format_number(panel.age or 0, 2)} "
                "years in the ranges in force, so it is not flagged (adult limits do not "
                "apply); judge it against the laboratory's age-specific interval or give one "
                "with --ranges"
            )
    if panel.context.pregnancy_trimester is not None and "hemoglobin" in panel.measurements:
        warnings.append(
            f"pregnancy, trimester {panel.context.pregnancy_trimester}: hemoglobin judged "
            "against the pregnancy cut-off for that trimester"
        )
    return warnings


def provenance(ranges: Ranges, guideline: str, today: dt.date) -> dict[str, str]:
    """What a report needs to be repeated exactly: with a laboratory's rules file in
    force, that file and its SHA-256 too."""
    catalogue = in_force()
    lab_rules = (catalogue.origin, catalogue.sha256) if catalogue is not None else None
    return dict(_provenance(ranges, guideline, today, lab_rules))


@lru_cache(maxsize=64)
def _provenance(
    ranges: Ranges, guideline: str, today: dt.date, lab_rules: tuple[str, str] | None
) -> tuple[tuple[str, str], ...]:
    from b12lab import __version__

    given = (
        ("b12lab_version", __version__),
        ("ranges_sha256", ranges.sha256),
        ("guideline", guideline),
        ("evaluated_on", today.isoformat()),
    )
    if lab_rules is not None and lab_rules[1]:
        given += (("rules_file", lab_rules[0]), ("rules_sha256", lab_rules[1]))
    return given


def evaluate(
    panel: Panel,
    ranges: Ranges,
    *,
    guideline: str | None = None,
    history: tuple[Panel, ...] = (),
    today: dt.date | None = None,
    brief: bool = False,
    run: DomainRunner | None = None,
) -> Report:
    """Interpret one panel (the latest, when `history` holds earlier ones).

    `brief`: the report without the texts a batch row never shows (each finding's
    detail, evidence and next steps, the implication summaries, the B12 detail, the
    values' display decimals and reference limits); every flag, finding, severity,
    missing test and warning is the full report's. `run` decides each domain
    (default `run_domain`).
    """
    today = today or dt.date.today()
    limits = ranges.limits(panel.sex, panel.age, guideline, panel.context.pregnancy_trimester)
    panel, warnings = derive(panel, ranges)
    if not brief:
        panel = shown_against(panel, limits)
    warnings = [*panel.warnings, *warnings, *_context_warnings(panel, ranges, today, limits)]
    flags: dict[str, str] = {}
    measurements = []
    for analyte in ranges.analytes:
        measurement = panel.get(analyte)
        if measurement is None:
            continue
        flag, warning = flag_for(measurement, limits)
        flags[analyte] = flag
        if warning:
            warnings.append(warning)
        disagreement = lab_flag_disagreement(measurement, flag)
        if disagreement:
            warnings.append(disagreement)
        if brief:
            measurements.append(measurement)
            continue
        band = limits.reference[analyte]
        measurements.append(
            evolve(measurement, flag=flag, reference_low=band.low, reference_high=band.high)
        )
    assessment, b12_warnings = assess_b12(panel, limits)
    warnings.extend(b12_warnings)
    for_rules = assess_for_rules(panel, limits, assessment, history, today)
    case = Case(panel, limits, for_rules, flags, today, history, serum=assessment)
    if for_rules.basis:
        warnings.append(
            f"b12: measured on B12 therapy, so the blood-count rules use the B12 of "
            f"{for_rules.basis}"
        )

    findings: list[Finding] = []
    wanted = [a for a in ALWAYS_WANTED if a not in panel.measurements]
    run = run or run_domain
    for domain in DOMAINS:
        domain_findings, domain_wanted = run(domain, case, brief)
        findings.extend(domain_findings)
        wanted.extend(domain_wanted)
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), DOMAINS.index(f.domain)))
    by_domain: dict[str, list[str]] = {}
    for finding in findings:
        by_domain.setdefault(finding.domain, []).append(finding.id)
    missing = tuple(a for a in ranges.analytes if a in wanted and a not in panel.measurements)
    return Report(
        patient_id=panel.patient_id,
        panel_date=panel.date,
        b12_status=assessment.status,
        measurements=tuple(measurements),
        implications=implications(case, by_domain, summaries=not brief),
        findings=tuple(findings),
        missing=missing,
        warnings=tuple(dict.fromkeys(warnings)),
        errors=panel.errors,
        guideline=limits.profile.name,
        guideline_title=limits.profile.title,
        b12_detail="" if brief else _b12_detail(case),
        therapy_start=panel.context.b12_therapy_start,
        therapy_day=case.days_on_therapy if case.on_therapy else None,
        provenance=provenance(ranges, limits.profile.name, today),
    )


def domain_rules(domain: str) -> tuple[tuple[Rule, ...], frozenset[str]]:
    """The domain's rules in force (a laboratory's rules file, when one is in force) and
    the analytes they read."""
    catalogue = in_force()
    if catalogue is None:
        return RULES_BY_DOMAIN[domain], DOMAIN_READS[domain]
    return catalogue.by_domain[domain], catalogue.reads[domain]


def run_domain(domain: str, case: Case, brief: bool = False) -> tuple[list[Finding], list[str]]:
    """One domain's findings, and the tests that would have decided its other rules.

    The rules see only the analytes their domain reads (DOMAIN_READS). `brief`: the
    findings without detail, evidence or next steps.
    """
    rules, reads = domain_rules(domain)
    visible = case.restricted(reads)
    findings: list[Finding] = []
    wanted: list[str] = []
    for rule, outcome in zip(rules, outcomes(rules, visible, brief), strict=True):
        if isinstance(outcome, Missing):
            wanted.extend(outcome.analytes)
        elif isinstance(outcome, Fired):
            wanted.extend(outcome.missing)
            if brief:
                findings.append(
                    Finding(rule.id, rule.domain, rule.severity, rule.title, "", (), {})
                )
                continue
            findings.append(
                Finding(
                    id=rule.id,
                    domain=rule.domain,
                    severity=rule.severity,
                    title=rule.title,
                    detail=outcome.detail,
                    next_steps=_steps_for_panel(rule.next_steps, outcome.next_steps, visible),
                    evidence=outcome.evidence,
                )
            )
    return findings, wanted


def _steps_for_panel(
    static: tuple[str, ...], added: tuple[str, ...], case: Case
) -> tuple[str, ...]:
    """The rule's next steps as they read for this panel: a step asking for tests
    already given is dropped or replaced by its rewording."""
    steps = []
    for step in static:
        text = step.for_panel(case) if isinstance(step, (Step, AskTests)) else step
        if text:
            steps.append(text)
    return tuple(dict.fromkeys((*steps, *added)))


def _b12_detail(case: Case) -> str:
    profile = case.limits.profile
    serum = case.serum_b12
    if serum.status == "unknown":
        return "not measured"
    cuts = (
        f"deficient below {case.limit('b12', profile.b12_deficient_below.value)}, "
        f"borderline below {case.limit('b12', profile.b12_borderline_below.value)}"
    )
    text = f"{case.shown('b12')} ({cuts}; {profile.name.upper()})"
    if serum.confirmed:
        text += "; functional deficiency confirmed by " + ", ".join(serum.markers)
    elif serum.excluded:
        text += "; deficiency not supported by " + ", ".join(serum.markers)
    elif serum.undetermined and not case.b12.on_therapy_b12:
        text += "; undetermined until MMA or homocysteine is measured"
    if case.b12.basis:
        text += f"; on therapy: the blood counts are judged by the B12 of {case.b12.basis}"
    elif case.b12.repleted:
        text += (
            f"; repleted on therapy (day {case.days_on_therapy}, past the rebound window): "
            "the panel is judged by B12 as measured"
        )
    elif case.b12.on_therapy_b12:
        text += "; measured on therapy, so it reflects the replacement"
    return text


def _position(value: float, cuts: tuple[float, ...]) -> int:
    """Where `value` lies among sorted cut points: 2*index, +1 when exactly on one."""
    index = bisect_left(cuts, value)
    return 2 * index + (index < len(cuts) and cuts[index] == value)
