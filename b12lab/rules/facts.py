"""The facts the rules file's conditions and texts name, computed from one Case.

A fact is a name (`platelets.low`, `b12.undecided`, `therapy_day`), a kind
(bool, number or text), the analytes it reads and how it is computed from
the panel, the limits in force, the context and the history. This module is
the only place they are computed: a rule in `rules.yaml` names facts and
never reaches into a panel. Thresholds of the ranges file are facts too,
named `threshold.<key>` (a number).

Per analyte (A is platelets, anc, ferritin, ...):

- `A.measured` the panel (as the domain sees it) has A;
- `A.low`, `A.high` flagged below or above its reference interval
  (critical flags included);
- `A.below_critical`, `A.at_or_above_critical_high` known to lie below the
  critical low limit, or at or above the critical high limit;
- `A.value` the number (none when not measured); `A.shown` the value as
  quoted; `A.lower_limit`, `A.upper_limit`, `A.critical_low_limit`,
  `A.critical_high_limit` the limits as quoted ("none" when there is none).

For the counts graded by CTCAE (platelets, anc): `A.grade` (1-4, none when
not low) and `A.may_lie_below_critical` (a censored value bounded from above
that may lie below the critical limit). The other facts are listed in FACTS
with their meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from b12lab.model import format_number
from b12lab.ranges import THRESHOLD_KEYS
from b12lab.rules.b12_status import markers_to_add
from b12lab.rules.base import (
    CTCAE_WORDS,
    MARKER_NAMES,
    Case,
    above,
    at_or_above,
    b12_unresolved,
    below,
    ctcae_grade,
    may_lie_below,
    next_b12_markers,
    still_deficient_on_therapy,
)

KINDS = ("bool", "number", "text")


class Fact(NamedTuple):
    name: str
    kind: str
    meaning: str
    reads: tuple[str, ...]
    compute: Callable[[Case], object]


FACTS: dict[str, Fact] = {}


def _fact(name: str, kind: str, meaning: str, reads: tuple[str, ...] = ()):
    def register(compute: Callable[[Case], object]) -> Callable[[Case], object]:
        FACTS[name] = Fact(name, kind, meaning, reads, compute)
        return compute

    return register


# The analytes with per-analyte facts (the rules file may name these).
ANALYTES = (
    "b12",
    "holotc",
    "mma",
    "homocysteine",
    "folate",
    "platelets",
    "anc",
    "wbc",
    "hemoglobin",
    "mcv",
    "ferritin",
    "tsat",
    "crp",
    "egfr",
)
GRADED = ("platelets", "anc")


def _limit_text(which: str) -> Callable[[str], Callable[[Case], str]]:
    def for_analyte(analyte: str) -> Callable[[Case], str]:
        return lambda case: case.limit(analyte, getattr(case.limits, which)(analyte))

    return for_analyte


def _per_analyte(analyte: str) -> None:
    reads = (analyte,)
    per = {
        "measured": ("bool", "the panel has it", lambda c: c.has(analyte)),
        "low": ("bool", "flagged below its reference interval", lambda c: c.is_low(analyte)),
        "high": ("bool", "flagged above its reference interval", lambda c: c.is_high(analyte)),
        "below_critical": (
            "bool",
            "known to lie below the critical low limit",
            lambda c: below(c.get(analyte), c.limits.critical_low(analyte)),
        ),
        "at_or_above_critical_high": (
            "bool",
            "known to lie at or above the critical high limit",
            lambda c: at_or_above(c.get(analyte), c.limits.critical_high(analyte)),
        ),
        "given": (
            "bool",
            "measured on this panel or an earlier one",
            lambda c: c.has_any(analyte),
        ),
        "flag": (
            "text",
            "its flag: low, high, normal, critical_low, ...",
            lambda c: c.flags.get(analyte),
        ),
        "above_upper_limit": (
            "bool",
            "known to lie above the upper limit",
            lambda c: above(c.get(analyte), c.limits.high(analyte)),
        ),
        "reference": (
            "text",
            "the reference interval as quoted, 'lower - upper'",
            lambda c: f"{_limit_text('low')(analyte)(c)} - {_limit_text('high')(analyte)(c)}",
        ),
        "value": ("number", "the value (none when not measured)", lambda c: _value(c, analyte)),
        "shown": ("text", "the value as quoted", lambda c: c.shown(analyte)),
        "lower_limit": ("text", "the lower limit as quoted", _limit_text("low")(analyte)),
        "upper_limit": ("text", "the upper limit as quoted", _limit_text("high")(analyte)),
        "critical_low_limit": (
            "text",
            "the critical low limit as quoted",
            _limit_text("critical_low")(analyte),
        ),
        "critical_high_limit": (
            "text",
            "the critical high limit as quoted",
            _limit_text("critical_high")(analyte),
        ),
    }
    if analyte in GRADED:
        per["grade"] = (
            "number",
            "CTCAE v5 grade of a low count (none when not low)",
            lambda c: _grade(c, analyte),
        )
        per["may_lie_below_critical"] = (
            "bool",
            "censored from above with a bound at or below the critical or grade-4 limit",
            lambda c: may_lie_below(
                c.get(analyte),
                c.limits.critical_low(analyte),
                c.limits.threshold(f"{analyte}_grade4_below"),
            ),
        )
    for suffix, (kind, meaning, compute) in per.items():
        _fact(f"{analyte}.{suffix}", kind, meaning, reads)(compute)


def _value(case: Case, analyte: str) -> float | None:
    measurement = case.get(analyte)
    return None if measurement is None else measurement.value


def _grade(case: Case, analyte: str) -> int | None:
    grade = ctcae_grade(case, analyte)
    return None if grade is None else int(grade)


for _analyte in ANALYTES:
    _per_analyte(_analyte)


# B12 as the blood-count and ferritin rules judge it (before therapy when on therapy).
_fact("b12.low", "bool", "B12 counts as low (deficient, or functionally confirmed)")(
    lambda c: c.b12.low is True
)
_fact("b12.not_low", "bool", "B12 known not to be low")(lambda c: c.b12.low is False)
_fact(
    "b12.undecided",
    "bool",
    "B12 unknown (not measured) or undetermined (borderline without confirmation), or "
    "measured on therapy with no pre-therapy B12",
)(lambda c: c.b12.low is None)
_fact("b12.repleted", "bool", "on therapy past the rebound window, B12 measured not low")(
    lambda c: c.b12.repleted
)
_fact("b12.status", "text", "deficient, borderline, normal, high or unknown")(
    lambda c: c.b12.status
)
_fact("b12.judged", "text", "the B12 the blood-count rules judged by, as quoted")(
    lambda c: c.b12_shown
)

# B12 domain: the panel's own B12 as measured (what the B12 rules judge), its cut-offs,
# the functional markers and the context the B12 rules read.
_fact(
    "b12.serum_status",
    "text",
    "the panel's own B12 status as measured: deficient, borderline, normal, high or unknown",
)(lambda c: c.serum_b12.status)
_fact(
    "b12.serum_low",
    "bool",
    "the panel's own B12 counts as low (deficient, or functionally confirmed)",
)(lambda c: c.serum_b12.low is True)
_fact(
    "b12.serum_confirmed",
    "bool",
    "the panel's own B12 borderline or normal, and a functional marker confirms a deficiency",
)(lambda c: c.serum_b12.confirmed)
_fact(
    "b12.serum_excluded",
    "bool",
    "the panel's own B12 borderline, and MMA or homocysteine measured and not raised: a "
    "deficiency is not supported",
)(lambda c: c.serum_b12.excluded)
_fact("b12.deficient_cut", "text", "the guideline's B12 deficiency cut-off, as quoted")(
    lambda c: c.limit("b12", c.limits.profile.b12_deficient_below.value)
)
_fact("b12.borderline_cut", "text", "the guideline's B12 borderline cut-off, as quoted")(
    lambda c: c.limit("b12", c.limits.profile.b12_borderline_below.value)
)
_fact(
    "holotc.deficient_cut",
    "text",
    "the guideline's holoTC cut-off for a functional deficiency, as quoted",
    ("holotc",),
)(lambda c: c.limit("holotc", c.limits.profile.holotc_deficient_below.value))
_fact("guideline", "text", "the guideline profile in force (who, nice, ...)")(
    lambda c: c.limits.profile.name
)
_fact("guideline.shown", "text", "the guideline profile's name as texts quote it (WHO, NICE)")(
    lambda c: c.limits.profile.name.upper()
)
_CONFIRMING = {"mma": "above", "homocysteine": "above", "holotc": "below"}


def _confirms(case: Case, marker: str) -> bool:
    return case.serum_b12.confirmed and marker in case.serum_b12.markers


def _confirm_cut(case: Case, marker: str) -> str:
    if marker == "holotc":
        return case.limit(marker, case.limits.profile.holotc_deficient_below.value)
    return case.limit(marker, case.limits.high(marker))


for _marker in _CONFIRMING:
    _fact(
        f"b12.confirmed_by_{_marker}",
        "bool",
        f"{_marker} is among the markers that confirm a functional B12 deficiency",
        (_marker,),
    )(lambda c, marker=_marker: _confirms(c, marker))
_fact(
    "b12.confirming_markers",
    "text",
    "the markers that confirm a functional B12 deficiency, each with its value and the "
    "limit it passes, as quoted ('mma 0.6 umol/L (above 0.45 umol/L); ...')",
    tuple(_CONFIRMING),
)(
    lambda c: "; ".join(
        f"{m} {c.shown(m)} ({_CONFIRMING[m]} {_confirm_cut(c, m)})"
        for m in c.serum_b12.markers
        if _confirms(c, m)
    )
)
_fact(
    "egfr.below_renal_threshold",
    "bool",
    "eGFR known to lie below the renal threshold (MMA and homocysteine rise with it)",
    ("egfr",),
)(lambda c: c.egfr_low)
_fact("egfr.renal_cut", "text", "the renal eGFR threshold, as quoted", ("egfr",))(
    lambda c: c.limit("egfr", c.limits.threshold("egfr_renal_below"))
)
_fact(
    "b12.next_markers_wanted",
    "bool",
    "a functional marker that would settle an undetermined B12 is not yet given",
    ("mma", "homocysteine", "holotc", "egfr"),
)(lambda c: bool(next_b12_markers(c)))
_fact(
    "b12.next_markers",
    "text",
    "those markers, named and joined with 'or' (holoTC alone with eGFR below the renal threshold)",
    ("mma", "homocysteine", "holotc", "egfr"),
)(lambda c: " or ".join(MARKER_NAMES[m] for m in next_b12_markers(c)))
_fact(
    "b12.on_therapy_without_baseline",
    "bool",
    "on therapy with no B12 from before its start: the panel's B12 (if any) reflects the "
    "replacement",
)(lambda c: c.b12.on_therapy_b12)
_fact(
    "b12.still_low_on_therapy",
    "bool",
    "measured on this panel, on therapy at or past the response window, and still deficient or low",
)(lambda c: still_deficient_on_therapy(c) is not None)
_fact("neuro_symptoms", "bool", "neurological symptoms reported")(
    lambda c: bool(c.panel.context.neuro_symptoms)
)
_fact("pregnancy_trimester", "number", "the pregnancy trimester, 1-3 (none when not pregnant)")(
    lambda c: c.panel.context.pregnancy_trimester
)

# Therapy, context and history.
_fact("on_therapy", "bool", "on B12 therapy at the panel date")(lambda c: c.on_therapy)
_fact(
    "therapy_day",
    "number",
    "days from the therapy start to the panel date (negative before it; none without therapy)",
)(lambda c: c.days_on_therapy)
_fact("therapy.shown", "text", "'no', or 'day N' of therapy")(
    lambda c: f"day {c.days_on_therapy}" if c.on_therapy else "no"
)
_fact(
    "platelets.persisting",
    "bool",
    "still low past the platelet recovery window on therapy after a low B12",
    ("platelets",),
)(lambda c: c.persisting("platelets"))
_fact("inflammation", "bool", "CRP above its limit (an unmeasured CRP is not)", ("crp",))(
    lambda c: c.inflammation
)
_fact(
    "ferritin.below_inflammation_cut",
    "bool",
    "ferritin below the cut-off for iron deficiency with inflammation",
    ("ferritin",),
)(lambda c: below(c.get("ferritin"), c.limits.threshold("ferritin_low_in_inflammation_below")))
_fact(
    "ferritin.inflammation_cut",
    "text",
    "the ferritin cut-off for iron deficiency with inflammation, as quoted",
    ("ferritin",),
)(lambda c: c.limit("ferritin", c.limits.threshold("ferritin_low_in_inflammation_below")))
_fact("alcohol.current", "bool", "heavy alcohol use now")(lambda c: c.panel.context.alcohol_use)
_fact("alcohol.stopped", "bool", "heavy alcohol use recently stopped")(
    lambda c: c.panel.context.alcohol_stopped
)
_fact("panel_date", "text", "the panel date (today when undated), as YYYY-MM-DD")(
    lambda c: c.panel_date.isoformat()
)


def _earlier_high_platelets(case: Case):
    """The first earlier panel with high platelets more than the persistence window ago."""
    persistence = int(case.limits.threshold("persistence_window_days"))
    high = case.limits.high("platelets")
    for panel in case.history:
        platelets = panel.get("platelets")
        if panel.date is None or platelets is None:
            continue
        still_high = platelets.value > (high or float("inf")) and platelets.censored != "<"
        if still_high and (case.panel_date - panel.date).days > persistence:
            return panel.date, platelets.shown()
    return None


_fact(
    "platelets.earlier_high",
    "bool",
    "an earlier panel had high platelets more than the persistence window before this one",
    ("platelets",),
)(lambda c: _earlier_high_platelets(c) is not None)
_fact("platelets.earlier_high_shown", "text", "that earlier count and its date, as quoted")(
    lambda c: "{1} on {0}".format(*_earlier_high_platelets(c))
)
_fact("platelets.earlier_high_date", "text", "that earlier panel's date")(
    lambda c: _earlier_high_platelets(c)[0].isoformat()
)
_fact("platelets.earlier_high_count", "text", "that earlier count, as quoted")(
    lambda c: _earlier_high_platelets(c)[1]
)
_fact("platelets.earlier_high_gap", "number", "days from that earlier panel to this one")(
    lambda c: (c.panel_date - _earlier_high_platelets(c)[0]).days
)


# Timeline: earlier panels of the patient that the response-to-therapy rules compare with.
def _earlier_facts(name: str, meaning: str, find: Callable[[Case], object]) -> None:
    """`name` (yes/no) with `name_count`, `name_date` and `name_shown`: the earlier value
    `find` returns as (panel date, measurement), as quoted."""
    reads = (name.split(".")[0],)
    _fact(name, "bool", meaning, reads)(lambda c: find(c) is not None)
    _fact(f"{name}_count", "text", "that earlier value, as quoted", reads)(
        lambda c: find(c)[1].shown()
    )
    _fact(f"{name}_date", "text", "that earlier panel's date", reads)(lambda c: str(find(c)[0]))
    _fact(f"{name}_shown", "text", "that earlier value and its date, as quoted", reads)(
        lambda c: f"{find(c)[1].shown()} on {find(c)[0]}"
    )


def _earlier_low_platelets(case: Case):
    """The latest earlier panel with a platelet count (as given) below the lower limit."""
    low = case.limits.low("platelets")
    for panel in reversed(case.history):
        platelets = panel.get("platelets")
        if platelets is not None and low is not None and platelets.value < low:
            return panel.date, platelets
    return None


def _earlier_low_count(analyte: str) -> Callable[[Case], object]:
    """The latest earlier panel with `analyte` known to lie below its lower limit (for WBC,
    among the panels without an ANC)."""

    def find(case: Case):
        low = case.limits.low(analyte)
        for panel in reversed(case.history):
            if analyte == "wbc" and panel.get("anc") is not None:
                continue
            earlier = panel.get(analyte)
            if earlier is not None and low is not None and below(earlier, low):
                return panel.date, earlier
        return None

    return find


def _hemoglobin_rose_from(case: Case):
    """The first earlier panel with a low hemoglobin that this one's (uncensored) hemoglobin
    exceeds by at least the meaningful rise."""
    current = case.get("hemoglobin")
    if current is None or current.censored:
        return None
    low = case.limits.low("hemoglobin")
    rise = case.limits.threshold("hemoglobin_real_rise")
    for panel in case.history:
        earlier = panel.get("hemoglobin")
        if earlier is None or low is None or not below(earlier, low):
            continue
        if earlier.censored != ">" and current.value >= earlier.value + rise:
            return panel.date, earlier
    return None


def _earlier_low_b12(case: Case):
    """The first earlier panel with a B12 (as given) below the borderline cut-off."""
    cut = case.limits.profile.b12_borderline_below.value
    for panel in case.history:
        earlier = panel.get("b12")
        if earlier is not None and earlier.value < cut:
            return panel.date, earlier
    return None


_earlier_facts(
    "platelets.earlier_low",
    "an earlier panel had a platelet count (as given) below the lower limit (the latest such)",
    _earlier_low_platelets,
)
_earlier_facts(
    "anc.earlier_low",
    "an earlier panel had an ANC below its lower limit (the latest such)",
    _earlier_low_count("anc"),
)
_earlier_facts(
    "wbc.earlier_low",
    "an earlier panel without an ANC had a WBC below its lower limit (the latest such)",
    _earlier_low_count("wbc"),
)
_earlier_facts(
    "hemoglobin.rose_from",
    "hemoglobin (not censored) at least the meaningful rise above a low hemoglobin of an "
    "earlier panel (the first such)",
    _hemoglobin_rose_from,
)
_fact("hemoglobin.real_rise", "text", "the meaningful hemoglobin rise, as quoted")(
    lambda c: c.limit("hemoglobin", c.limits.threshold("hemoglobin_real_rise"))
)
_earlier_facts(
    "b12.earlier_low",
    "an earlier panel had a B12 (as given) below the borderline cut-off (the first such)",
    _earlier_low_b12,
)


_fact(
    "marrow_judged_as_measured",
    "bool",
    "on therapy with B12 repleted or past the persistence window: the pre-therapy B12 no "
    "longer governs the ferritin (iron overload) rules",
)(lambda c: c.marrow_judged_as_measured)


def _earlier_ferritin(case: Case):
    """The highest earlier ferritin not censored from above, with its date."""
    best = None
    for panel in case.history:
        ferritin = panel.get("ferritin")
        if ferritin is None or ferritin.censored == "<":
            continue
        if best is None or ferritin.value > best[1].value:
            best = (panel.date, ferritin)
    return best


def _ferritin_fell(case: Case) -> bool:
    earlier = _earlier_ferritin(case)
    if earlier is None:
        return False
    real_fall = 1 - case.limits.threshold("ferritin_real_fall_percent") / 100
    return below(case.get("ferritin"), earlier[1].value * real_fall)


_fact(
    "ferritin.fell",
    "bool",
    "fallen below the highest earlier ferritin by more than the real-fall share",
    ("ferritin",),
)(_ferritin_fell)
_fact("ferritin.earlier_count", "text", "that highest earlier ferritin, as quoted")(
    lambda c: _earlier_ferritin(c)[1].shown()
)
_fact(
    "ferritin.earlier_date",
    "text",
    "that earlier panel's date ('an earlier panel' when undated)",
)(lambda c: d.isoformat() if (d := _earlier_ferritin(c)[0]) else "an earlier panel")
_fact(
    "ferritin.earlier_shown",
    "text",
    "that earlier ferritin and its date, as quoted",
)(
    lambda c: (
        f"{_earlier_ferritin(c)[1].shown()} on "
        f"{d.isoformat() if (d := _earlier_ferritin(c)[0]) else '?'}"
    )
)


# Blood count and neutrophils: the white-cell line, the lines still low on therapy, the
# CTCAE names of a low ANC, and the blood film.
for _line in ("anc", "wbc", "hemoglobin"):
    _fact(
        f"{_line}.persisting",
        "bool",
        f"{_line} still low past its recovery window on therapy after a low B12 (or repleted)",
        (_line,),
    )(lambda c, line=_line: c.persisting(line))


def _anc_named(case: Case) -> str:
    grade = ctcae_grade(case, "anc")
    if grade is None:
        return "Neutropenia"
    return f"{CTCAE_WORDS[grade].capitalize()} neutropenia (CTCAE grade {grade})"


_fact(
    "anc.neutropenia",
    "text",
    "a low ANC named by its CTCAE v5 grade as a sentence starts ('Severe neutropenia (CTCAE "
    "grade 3)'; 'Neutropenia' when not graded)",
    ("anc",),
)(_anc_named)

# The lines the persisting rules look at: platelets, the white cells (ANC, or WBC when
# there is no ANC) and hemoglobin, each with the name its text uses.
_LINE_NAMES = {
    "platelets": "platelets",
    "anc": "ANC",
    "wbc": "WBC (no ANC)",
    "hemoglobin": "hemoglobin",
}


def _persisting_lines(case: Case) -> list[str]:
    white = case.white_cells
    lines = ["platelets", *((white,) if white else ()), "hemoglobin"]
    return [line for line in lines if case.persisting(line)]


def _persisting_shown(case: Case) -> str:
    parts = []
    for line in _persisting_lines(case):
        grade = ctcae_grade(case, line) if line in GRADED else None
        graded = f", {CTCAE_WORDS[grade]} (CTCAE grade {grade})" if grade else ""
        parts.append(
            f"{_LINE_NAMES[line]} {case.shown(line)}{graded} (expected back by day "
            f"{case.recovery_day(line)})"
        )
    return "; ".join(parts)


_fact(
    "cytopenias.persisting",
    "number",
    "how many of platelets, the white cells (ANC, or WBC without ANC) and hemoglobin are "
    "still low past their recovery windows on therapy after a low B12 (or repleted)",
    ("platelets", "anc", "wbc", "hemoglobin"),
)(lambda c: len(_persisting_lines(c)))
_fact(
    "cytopenias.persisting_shown",
    "text",
    "those lines, each with its value, CTCAE grade and the day it was expected back, as "
    "quoted ('platelets 40 x10^9/L, moderate (CTCAE grade 2) (expected back by day 28)')",
    ("platelets", "anc", "wbc", "hemoglobin"),
)(_persisting_shown)
_fact(
    "b12.borderline_undecided",
    "bool",
    "B12 as the blood-count rules judge it borderline, with no functional marker deciding it "
    "and not measured on therapy",
)(lambda c: c.b12.undetermined)
_fact("hypersegmented_neutrophils", "bool", "hypersegmented neutrophils reported on the film")(
    lambda c: bool(c.panel.context.hypersegmented_neutrophils)
)


# Facts that, on a panel without earlier panels, read their analytes only through
# each one's flag and whether it is measured (beside the case's B12 assessments,
# therapy day and context; those comparing with earlier panels are then false):
# values that move without changing their flags leave them as they are
# (tests/test_brief_decision.py moves every value to check it). A batch, which
# decides each panel without earlier ones, remembers a domain's outcome by the flags
# alone of the analytes its conditions read only through these (b12lab.decision).
BY_FLAG = frozenset(
    {
        *(f"{a}.{suffix}" for a in ANALYTES for suffix in ("measured", "low", "high", "flag")),
        *(f"{a}.given" for a in ANALYTES),
        *(f"{line}.persisting" for line in ("platelets", "anc", "wbc", "hemoglobin")),
        "cytopenias.persisting",
        "inflammation",
        "hemoglobin.rose_from",
        "platelets.earlier_high",
        "platelets.earlier_low",
        "anc.earlier_low",
        "wbc.earlier_low",
        "b12.earlier_low",
        "ferritin.fell",
    }
)


# What `unresolved:` may list as missing beyond analytes: computed sets.
MISSING_SETS: dict[str, Callable[[Case], tuple[str, ...]]] = {
    "undecided_b12": lambda c: b12_unresolved(c).analytes,
    "borderline_b12_markers": markers_to_add,
}


def kinds() -> dict[str, str]:
    """Every name a condition or text may use, with its kind."""
    names = {name: fact.kind for name, fact in FACTS.items()}
    names.update({f"threshold.{key}": "number" for key in THRESHOLD_KEYS})
    return names


def reads(name: str) -> tuple[str, ...]:
    fact = FACTS.get(name)
    return fact.reads if fact else ()


class Facts(dict):
    """One case's facts, each computed when first asked for (then a plain dict lookup:
    a compiled condition reads its facts as `f[name]`)."""

    def __init__(self, case: Case):
        super().__init__()
        self.case = case

    def __missing__(self, name: str) -> object:
        if name.startswith("threshold."):
            value = self.case.limits.threshold(name.removeprefix("threshold."))
        else:
            value = FACTS[name].compute(self.case)
        self[name] = value
        return value


def facts_of(case: Case) -> Facts:
    """The case's facts, shared by every rule that looks at this case (the rules of one
    domain see one restricted case): each fact is computed once per case, not per rule."""
    known = case.__dict__.get("_facts")  # a frozen Case: kept beside its fields, not one
    if known is None:
        known = case.__dict__["_facts"] = Facts(case)
    return known


def shown(value: object) -> str:
    """A fact as a text quotes it: whole numbers without decimals."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_number(value, 0) if value == int(value) else str(value)
    return str(value)
