"""What a rule is, and the facts about one panel that every rule reads.

A rule is an id (the stable `findings[].id`), its catalogue text, and how it
decides: its entry of `b12lab/rules.yaml` (or a laboratory's rules file), a
function from a Case to Fired (the finding's detail and evidence), Missing (the
trigger could not be decided without these analytes) or None. Thresholds come
from the Case's limits, which come from the ranges file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from b12lab.model import Measurement, Panel, evolve, format_number
from b12lab.ranges import Limits

LOW_FLAGS = ("low", "critical_low")
HIGH_FLAGS = ("high", "critical_high")


class Fired(NamedTuple):
    detail: str
    evidence: dict[str, str]
    next_steps: tuple[str, ...] = ()  # added to the rule's own next steps
    missing: tuple[str, ...] = ()  # tests that would sharpen this finding


class Missing(NamedTuple):
    analytes: tuple[str, ...]


class Step(str):
    """A next step that asks for tests: dropped, or replaced by `given`, once the panel
    or its history has them; `on_therapy` replaces it when the panel's B12 was measured on
    B12 therapy ("" drops it).

    It is a plain string everywhere else (catalogue, JSON).
    """

    asks: tuple[str, ...]
    given: str | None
    on_therapy: str | None

    def __new__(
        cls,
        text: str,
        *,
        asks: tuple[str, ...] = (),
        given: str | None = None,
        on_therapy: str | None = None,
    ) -> Step:
        step = super().__new__(cls, text)
        step.asks = asks
        step.given = given
        step.on_therapy = on_therapy
        return step

    def __getnewargs_ex__(self) -> tuple[tuple, dict]:  # a copy for another process
        return (str(self),), {"asks": self.asks, "given": self.given, "on_therapy": self.on_therapy}

    def for_panel(self, case: Case) -> str | None:
        """The step as it reads for this panel: None when every test it asks for is given."""
        if self.on_therapy is not None and case.b12_measured_on_therapy:
            return self.on_therapy or None
        if self.asks and all(case.has_any(a) for a in self.asks):
            return self.given
        return str(self)


class AskTests(str):
    """A next step that lists tests to send: only those the panel and its history lack.

    `template` holds "{tests}"; `tests` maps analytes to the words used for them;
    `also` names tests outside the panel's analytes (always listed). The catalogue
    shows every test.
    """

    template: str
    tests: tuple[tuple[str, str], ...]
    also: tuple[str, ...]

    def __new__(
        cls, template: str, tests: dict[str, str], *, also: tuple[str, ...] = ()
    ) -> AskTests:
        step = super().__new__(cls, template.format(tests=_listed([*tests.values(), *also])))
        step.template = template
        step.tests = tuple(tests.items())
        step.also = also
        return step

    def __getnewargs_ex__(self) -> tuple[tuple, dict]:  # a copy for another process
        return (self.template, dict(self.tests)), {"also": self.also}

    def for_panel(self, case: Case) -> str | None:
        wanted = [name for analyte, name in self.tests if not case.has_any(analyte)]
        wanted.extend(self.also)
        return self.template.format(tests=_listed(wanted)) if wanted else None


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class Rule:
    id: str
    domain: str
    severity: str
    title: str
    trigger: str
    says: str
    next_steps: tuple[str, ...]
    sources: tuple[str, ...]
    reads: frozenset[str]
    evaluate: Callable[[Case], Fired | Missing | None] = field(compare=False)
    # A rule written as data: its parsed conditions (b12lab.rules.data.RuleLogic).
    logic: object = field(default=None, compare=False)


@dataclass(frozen=True)
class B12Assessment:
    """B12 status and whether B12 counts as low for the platelet/neutrophil/ferritin rules.

    `low` is True (deficient, or functionally confirmed), False (not low), or
    None: unknown (no B12) or undetermined (borderline without confirmation).
    """

    status: str
    low: bool | None
    confirmed: bool = False
    excluded: bool = False
    detail: str = ""
    markers: tuple[str, ...] = ()  # the functional markers that decided `low`
    # On B12 therapy: True when the panel's B12 was measured on or after the start
    # (it reflects the replacement) and no pre-therapy B12 took its place.
    on_therapy_b12: bool = False
    # When the B12 that decides `low` is not the panel's own: what it is, e.g.
    # "81.2 pmol/L before therapy (2026-09-01)".
    basis: str = ""
    renal_caveat: bool = False  # MMA or homocysteine raised with a low eGFR: not counted
    # On therapy past the rebound window with the on-therapy B12 measured not low:
    # the deficiency is corrected, and the rules judge the panel by B12 as measured.
    repleted: bool = False

    @property
    def undetermined(self) -> bool:
        return self.status == "borderline" and self.low is None and not self.on_therapy_b12

    @property
    def therapy_phase(self) -> bool:
        """B12 cannot say whether it is low: it reflects the replacement."""
        return self.on_therapy_b12 and self.low is None


@dataclass(frozen=True)
class Case:
    """One panel with its limits, B12 assessment and earlier panels (oldest first).

    `b12` is the assessment the blood-count and ferritin rules use: on therapy
    it comes from the latest pre-therapy B12, or says the phase. `serum` is the
    panel's own B12 as measured (the B12-domain rules); None means `b12`.
    """

    panel: Panel
    limits: Limits
    b12: B12Assessment
    flags: dict[str, str]
    today: dt.date
    history: tuple[Panel, ...] = ()
    serum: B12Assessment | None = None

    @property
    def serum_b12(self) -> B12Assessment:
        return self.serum or self.b12

    @property
    def b12_shown(self) -> str:
        """The B12 the blood-count rules judged by, as it should be quoted."""
        return self.b12.basis or self.shown("b12")

    def get(self, analyte: str) -> Measurement | None:
        return self.panel.get(analyte)

    def restricted(self, analytes: frozenset[str]) -> Case:
        """The same case with only `analytes` visible."""
        measurements = {a: m for a, m in self.panel.measurements.items() if a in analytes}
        return evolve(
            self,
            panel=evolve(self.panel, measurements=measurements),
            flags={a: f for a, f in self.flags.items() if a in analytes},
        )

    def has(self, analyte: str) -> bool:
        return analyte in self.panel.measurements

    @property
    def white_cells(self) -> str | None:
        """The white-cell count the rules and texts read: the ANC, else the WBC (None
        when neither was measured)."""
        return "anc" if self.has("anc") else "wbc" if self.has("wbc") else None

    def has_any(self, analyte: str) -> bool:
        """Measured on this panel or on an earlier one (a next step never asks for it)."""
        return self.has(analyte) or any(p.get(analyte) is not None for p in self.history)

    def is_low(self, analyte: str) -> bool:
        return self.flags.get(analyte) in LOW_FLAGS

    def is_high(self, analyte: str) -> bool:
        return self.flags.get(analyte) in HIGH_FLAGS

    def shown(self, analyte: str) -> str:
        measurement = self.get(analyte)
        return measurement.shown() if measurement else "not measured"

    def limit(self, analyte: str, value: float | None) -> str:
        spec = self.limits.analytes[analyte]
        if value is None:
            return "none"
        return f"{format_number(value, spec.decimals)} {spec.canonical_unit}"

    @property
    def panel_date(self) -> dt.date:
        return self.panel.date or self.today

    @property
    def days_on_therapy(self) -> int | None:
        return therapy_days(self.panel, self.today)

    @property
    def on_therapy(self) -> bool:
        days = self.days_on_therapy
        return days is not None and days >= 0

    @property
    def b12_measured_on_therapy(self) -> bool:
        """The panel's B12 was measured on or after the therapy start."""
        b12 = self.get("b12")
        start = therapy_start(self.panel, self.today)
        if not self.on_therapy or b12 is None or start is None:
            return False
        return (b12.carried_from or self.panel_date) >= start

    @property
    def b12_treated_low(self) -> bool:
        """On therapy after a low B12 (pre-therapy, or still low), or with B12 repleted:
        the cytopenias it caused are expected to recover within the recovery windows."""
        return self.on_therapy and (self.b12.low is True or self.b12.repleted)

    def recovery_day(self, analyte: str) -> int:
        """The day of therapy by which a low line is expected back above its lower limit."""
        key = (
            "hemoglobin_recovery_days" if analyte == "hemoglobin" else "platelet_anc_recovery_days"
        )
        return int(self.limits.threshold(key))

    def persisting(self, analyte: str) -> bool:
        """Still low past its recovery window on therapy after a low B12 (or repleted)."""
        days = self.days_on_therapy
        return (
            self.b12_treated_low
            and days is not None
            and self.is_low(analyte)
            and days > self.recovery_day(analyte)
        )

    @property
    def marrow_judged_as_measured(self) -> bool:
        """B12 repleted, or on therapy past the persistence window: the pre-therapy B12
        no longer governs the ferritin (iron overload) rules."""
        days = self.days_on_therapy
        if not self.on_therapy or days is None:
            return False
        return self.b12.repleted or days > self.limits.threshold("persistence_window_days")

    @property
    def egfr_low(self) -> bool:
        """eGFR below the renal threshold: MMA and homocysteine rise with it."""
        return below(self.get("egfr"), self.limits.threshold("egfr_renal_below"))

    @property
    def inflammation(self) -> bool:
        """CRP above its limit; an unmeasured CRP is not inflammation."""
        return self.is_high("crp")


# A censored value: "<" and "<=" bound it from above, ">" and ">=" from below;
# "<=" and ">=" may equal their bound, so a bound exactly at a cut-off straddles it.
UPPER_BOUNDED = ("<", "<=")
LOWER_BOUNDED = (">", ">=")


def therapy_days(panel: Panel, today: dt.date) -> int | None:
    """Days from the B12 therapy start to the panel date (today when undated)."""
    context = panel.context
    if context.b12_therapy_start is not None:
        return ((panel.date or today) - context.b12_therapy_start).days
    return context.days_on_therapy


def therapy_start(panel: Panel, today: dt.date) -> dt.date | None:
    """The therapy start date, worked back from days on therapy when only those are given."""
    context = panel.context
    if context.b12_therapy_start is not None:
        return context.b12_therapy_start
    if context.days_on_therapy is not None:
        return (panel.date or today) - dt.timedelta(days=context.days_on_therapy)
    return None


def ctcae_grade(case: Case, analyte: str) -> str | None:
    """CTCAE v5 grade of a low ANC or platelet count, counted from the lower limit in force."""
    measurement = case.get(analyte)
    lower = case.limits.low(analyte)
    if measurement is None or not below(measurement, lower):
        return None
    keys = {
        "anc": ("anc_grade2_below", "anc_moderate_below", "anc_grade4_below"),
        "platelets": (
            "platelets_grade2_below",
            "platelets_grade3_below",
            "platelets_grade4_below",
        ),
    }[analyte]
    grade = 1
    for number, key in enumerate(keys, start=2):
        if below(measurement, case.limits.threshold(key)):
            grade = number
    return str(grade)


CTCAE_WORDS = {"1": "mild", "2": "moderate", "3": "severe", "4": "life-threatening"}


def may_lie_below(
    measurement: Measurement | None, critical: float | None, grade4: float | None
) -> bool:
    """A censored value bounded from above (`<=20`, `<25`) that may lie below the critical
    limit: its bound is at or below the higher of the critical and CTCAE grade-4 limits.
    An urgent finding is never lost to censoring."""
    if measurement is None or critical is None or measurement.censored not in UPPER_BOUNDED:
        return False
    return measurement.value <= max(critical, grade4 if grade4 is not None else critical)


def below(measurement: Measurement | None, cut: float | None) -> bool:
    """Known to lie below `cut` (a censored value only when all of it does)."""
    if measurement is None or cut is None or measurement.censored in LOWER_BOUNDED:
        return False
    if measurement.censored == "<":
        return measurement.value <= cut
    return measurement.value < cut


def above(measurement: Measurement | None, cut: float | None) -> bool:
    """Known to lie above `cut`."""
    if measurement is None or cut is None or measurement.censored in UPPER_BOUNDED:
        return False
    if measurement.censored == ">":
        return measurement.value >= cut
    return measurement.value > cut


def at_or_above(measurement: Measurement | None, cut: float | None) -> bool:
    """Known to lie at or above `cut`."""
    if measurement is None or cut is None or measurement.censored in UPPER_BOUNDED:
        return False
    return measurement.value >= cut


def at_most(measurement: Measurement | None, cut: float | None) -> bool:
    """Known not to exceed `cut` (measured and on the normal side of an upper cut-off)."""
    if measurement is None or cut is None or measurement.censored in LOWER_BOUNDED:
        return False
    return measurement.value <= cut


def at_least(measurement: Measurement | None, cut: float | None) -> bool:
    """Known not to fall below `cut`."""
    if measurement is None or cut is None or measurement.censored in UPPER_BOUNDED:
        return False
    return measurement.value >= cut


RULES: dict[str, Rule] = {}  # b12lab's catalogue, filled from rules.yaml by b12lab.rules
# Every rule may ask what would decide an undetermined B12 (b12_unresolved).
B12_INPUTS = frozenset({"b12", "mma", "homocysteine", "holotc", "egfr"})
# Pairs of findings that must never be reported together (checked by a test
# over every panel shape the cut points allow).
CONTRADICTORY = frozenset(
    frozenset(pair)
    for pair in (
        ("b12-deficient", "b12-high"),
        ("plt-low-consistent-with-b12", "plt-low-not-explained-by-b12"),
        ("neut-low-consistent-with-b12", "neut-low-not-explained-by-b12"),
        ("neut-low-consistent-with-b12", "wbc-low-not-explained-by-b12"),
        ("pancytopenia-b12-mimics-mds", "pancytopenia-unexplained"),
        ("fer-low-combined-deficiency", "fer-low-iron-deficiency"),
        ("fer-may-mask-iron-deficiency", "fer-high-iron-overload-pattern"),
        ("fer-may-mask-iron-deficiency", "fer-high-not-b12-related"),
        ("fer-low-iron-deficiency", "fer-falling-on-therapy"),
        ("plt-high-not-caused-by-b12-deficiency", "plt-high-rebound-on-therapy"),
        ("b12-on-therapy", "plt-low-not-explained-by-b12"),
        ("b12-on-therapy", "neut-low-not-explained-by-b12"),
        ("b12-on-therapy", "wbc-low-not-explained-by-b12"),
        ("b12-on-therapy", "pancytopenia-unexplained"),
        ("b12-on-therapy", "fer-low-iron-deficiency"),
        ("b12-on-therapy", "fer-high-not-b12-related"),
        ("b12-neuro-parenteral", "neuro-symptoms-b12-not-excluded"),
        ("folate-low-treat-b12-first", "folate-low-b12-unmeasured"),
        ("plt-recovered-on-therapy", "plt-low-consistent-with-b12"),
        ("neut-recovered-on-therapy", "neut-low-consistent-with-b12"),
        ("cytopenia-persisting-on-therapy", "plt-low-consistent-with-b12"),
        ("cytopenia-persisting-on-therapy", "neut-low-consistent-with-b12"),
        ("cytopenias-persisting-on-therapy", "plt-low-consistent-with-b12"),
        ("cytopenias-persisting-on-therapy", "neut-low-consistent-with-b12"),
        ("cytopenias-persisting-on-therapy", "pancytopenia-b12-mimics-mds"),
        ("cytopenia-persisting-on-therapy", "cytopenias-persisting-on-therapy"),
        ("b12-on-therapy", "b12-not-responding"),
        ("macrocytosis-supports-megaloblastic", "macrocytosis-not-b12-or-folate"),
        ("folate-deficiency", "folate-low-treat-b12-first"),
        ("folate-deficiency", "folate-low-b12-unmeasured"),
    )
)


def b12_unresolved(case: Case) -> Missing:
    """What would decide a B12-dependent rule when B12 is unknown or undetermined.

    On therapy without a pre-therapy B12, no test now decides it (b12-on-therapy says so).
    """
    if case.b12.on_therapy_b12:
        return Missing(())
    if case.b12.status == "unknown":
        return Missing(("b12",))
    return Missing(undetermined_b12_missing(case))


def undetermined_b12_missing(case: Case) -> tuple[str, ...]:
    """What `missing` lists for an undetermined B12: MMA and homocysteine when not given,
    and holoTC under `nice` or with eGFR below the renal threshold (where it decides)."""
    wanted = ["mma", "homocysteine"]
    if case.limits.profile.name == "nice" or case.egfr_low:
        wanted.append("holotc")
    return tuple(a for a in wanted if not case.has_any(a))


def still_deficient_on_therapy(case: Case):
    """The panel's own B12, measured on therapy at or past the response window and still
    deficient (b12-not-responding), with the days on therapy; None otherwise."""
    days = case.days_on_therapy
    if not case.on_therapy or days is None:
        return None
    if days < case.limits.threshold("b12_response_days"):
        return None
    latest = case.get("b12")
    if latest is None or latest.carried_from is not None:
        return None  # not measured on the latest panel: nothing to say about the response
    if case.serum_b12.status != "deficient" and case.serum_b12.low is not True:
        return None
    return latest, days


def next_b12_markers(case: Case) -> tuple[str, ...]:
    """The functional markers that would settle an undetermined B12, not yet measured.

    With eGFR below the renal threshold MMA and homocysteine rise with the kidney
    function, so holoTC is the one to send.
    """
    if case.egfr_low:
        wanted = ["holotc"]
    else:
        wanted = ["mma", "homocysteine"]
        if case.limits.profile.name == "nice":
            wanted.append("holotc")
    return tuple(a for a in wanted if not case.has_any(a))


MARKER_NAMES = {
    "mma": "methylmalonic acid (MMA)",
    "homocysteine": "total homocysteine",
    "holotc": "holotranscobalamin (active B12)",
}
