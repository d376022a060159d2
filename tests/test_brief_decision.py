"""A batch decides each key from the engine's brief report, each domain's outcome
remembered by what its rules see: the decision must equal the full report's, for every
panel, whatever was decided before it."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest
from conftest import REPO, TODAY, canonical_measurement
from hypothesis import given
from hypothesis import strategies as st
from test_decision import _panels

from b12lab.decision import Decision, DecisionCore
from b12lab.engine import evaluate
from b12lab.model import Context, Panel
from b12lab.ranges import load_ranges
from b12lab.rules.catalogue import load_lab_rules
from b12lab.rules.facts import BY_FLAG, FACTS

RANGES = load_ranges()
LAB_RULES = load_lab_rules(REPO / "examples" / "lab_rules.yaml")
CENSORED = (None, None, None, None, "<", ">", "<=", ">=")

OVERLAY = load_ranges(REPO / "examples" / "lab_overlay.yaml")  # a laboratory's limits
GUIDELINES = (None, "who", "nice")

# One core per guideline, rules file and ranges for the whole module: each panel meets
# the domain outcomes remembered from the panels before it.
CORES = {
    (guideline, lab, overlay): DecisionCore(
        OVERLAY if overlay else RANGES, guideline, TODAY, LAB_RULES if lab else None
    )
    for guideline in GUIDELINES
    for lab in (False, True)
    for overlay in (False, True)
}


def _cut_values(analyte: str) -> list[float]:
    """Values at, just under and just over each cut point of any band of the analyte."""
    cuts: set[float] = set()
    for sex in (None, "female", "male"):
        for age in (None, 0.5, 8, 15, 40, 70):
            for trimester in (None, 1, 3):
                for guideline in ("who", "nice"):
                    for ranges in (RANGES, OVERLAY):
                        limits = ranges.limits(sex, age, guideline, trimester)
                        cuts.update(limits.cut_points(analyte))
    points = sorted(c for c in cuts if c > 0) or [1.0]
    return sorted({round(p * f, 3) for p in points for f in (0.9, 0.99, 1.0, 1.01, 1.1)})


VALUES = {analyte: _cut_values(analyte) for analyte in RANGES.analytes}


@st.composite
def measurements(draw, analyte: str):
    value = draw(st.sampled_from(VALUES[analyte]))
    censored = draw(st.sampled_from(CENSORED))
    lab = draw(st.sampled_from((None, None, None, "L", "N", "H", "HH")))
    reference = draw(st.sampled_from((None, "10-20"))) if lab else None
    return canonical_measurement(RANGES, analyte, value, censored, lab, reference)


@st.composite
def panels(draw):
    chosen = draw(
        st.lists(st.sampled_from(list(RANGES.analytes)), unique=True, min_size=0, max_size=12)
    )
    values = {a: draw(measurements(a)) for a in chosen}
    date = draw(st.sampled_from((None, TODAY, TODAY - dt.timedelta(days=30))))
    therapy = draw(st.sampled_from(("none", "start", "days")))
    day = draw(st.sampled_from((-20, -1, 0, 2, 3, 14, 15, 28, 29, 42, 56, 57, 120)))
    context = Context(
        b12_therapy_start=(date or TODAY) - dt.timedelta(days=day) if therapy == "start" else None,
        days_on_therapy=day if therapy == "days" and day >= 0 else None,
        alcohol_use=draw(st.booleans()),
        alcohol_stopped=draw(st.booleans()),
        neuro_symptoms=draw(st.booleans()),
        hypersegmented_neutrophils=draw(st.booleans()),
        pregnancy_trimester=draw(st.sampled_from((None, None, 1, 2, 3))),
    )
    return Panel(
        measurements=values,
        date=date,
        sex=draw(st.sampled_from((None, "female", "male"))),
        age=draw(st.sampled_from((None, 0.5, 8, 15, 40, 70, 90))),
        context=context,
    )


def _full(core: DecisionCore, panel: Panel) -> Decision:
    return Decision.of(core.report(panel))


def _alike(count: int, seed: int):
    """Panels of a few values each, near a few cut points (censored or flagged by the
    laboratory for some, on therapy for some), a few sexes, ages and contexts: panels
    that share domain outcomes with earlier ones but not their whole key."""
    rng = random.Random(seed)
    for _ in range(count):
        values = {}
        for analyte in RANGES.analytes:
            if rng.random() < 0.8:
                continue
            value = rng.choice((VALUES[analyte][0], VALUES[analyte][-1]))
            censored = rng.choice((None,) * 8 + ("<", ">"))
            lab = rng.choice((None,) * 8 + ("L", "H"))
            values[analyte] = canonical_measurement(RANGES, analyte, value, censored, lab)
        start = rng.choice((None, None, None, TODAY - dt.timedelta(days=rng.choice((-5, 60)))))
        panel = Panel(
            measurements=values,
            date=TODAY,
            sex=rng.choice(("female", "female", None)),
            age=40,
            context=Context(b12_therapy_start=start, alcohol_use=rng.random() < 0.1),
        )
        yield rng.choice(("who", "nice")), panel


@given(
    panel=panels(),
    guideline=st.sampled_from(GUIDELINES),
    lab=st.booleans(),
    overlay=st.booleans(),
)
def test_brief_decision_equals_the_full_reports(panel, guideline, lab, overlay):
    core = CORES[(guideline, lab, overlay)]
    assert core.decide_once(panel) == _full(core, panel)


def test_brief_decisions_equal_the_full_reports_over_many_panels():
    """Panels at every cut point, one core for each guideline and rules file: many
    domain outcomes are remembered ones."""
    remembered = 0
    for lab in (False, True):
        rules = LAB_RULES if lab else None
        cores = {g: DecisionCore(RANGES, g, TODAY, rules) for g in ("who", "nice")}
        for guideline, panel in (*_alike(400, seed=17), *_panels(200, seed=19)):
            core = cores[guideline]
            before = len(core._domains)
            assert core.decide_once(panel) == _full(core, panel)
            remembered += 5 - (len(core._domains) - before)
    assert remembered > 500


def test_a_value_carried_from_an_earlier_panel_is_decided_in_full():
    core = DecisionCore(RANGES, "who", TODAY)
    for _, panel in _panels(80, seed=5):
        b12 = panel.measurements.get("b12")
        if b12 is None:
            continue
        carried = replace(b12, carried_from=TODAY - dt.timedelta(days=90))
        panel = replace(panel, measurements={**panel.measurements, "b12": carried})
        assert core.decide_once(panel) == _full(core, panel)


def test_a_key_blind_to_a_value_position_is_caught(monkeypatch):
    """The comparison can fail: remembering domain outcomes without each value's
    position and flag gives other decisions than the full reports."""
    seen = DecisionCore._seen

    def blind(self, case):
        found = seen(self, case)
        if found is None:
            return None
        number, visible = found
        return number, {a: (None, censored, None) for a, (_, censored, _) in visible.items()}

    monkeypatch.setattr(DecisionCore, "_seen", blind)
    core = DecisionCore(RANGES, "who", TODAY)
    differ = sum(core.decide_once(p) != _full(core, p) for _, p in _alike(400, seed=17))
    assert differ > 5


@pytest.mark.parametrize("guideline", ["who", "nice"])
def test_remembered_outcomes_stay_bounded(monkeypatch, guideline):
    from b12lab import decision

    monkeypatch.setattr(decision, "MAX_DOMAIN_OUTCOMES", 7)
    core = DecisionCore(RANGES, guideline, TODAY)
    for _, panel in _panels(60, seed=9):
        assert core.decide_once(panel) == _full(core, panel)
        assert len(core._domains) <= 7


def _case(panel: Panel, guideline: str):
    """The case the engine's rules see for the panel."""
    seen = []

    def keep(domain, case, brief):
        seen.append(case)
        return [], []

    evaluate(panel, RANGES, guideline=guideline, today=TODAY, brief=True, run=keep)
    return seen[0]


def test_facts_read_by_flag_change_only_with_a_flag():
    """Every value moved to each other position with the same flag (and the same B12
    assessments): each `BY_FLAG` fact keeps its value."""
    checked = 0
    names = sorted(BY_FLAG)
    for guideline, panel in (*_alike(150, seed=23), *_panels(150, seed=29)):
        case = _case(panel, guideline)
        facts = {name: FACTS[name].compute(case) for name in names}
        for analyte, measurement in panel.measurements.items():
            for value in VALUES[analyte]:
                moved = replace(
                    measurement, value=value, input=f"{measurement.censored or ''}{value}"
                )
                other = _case(
                    replace(panel, measurements={**panel.measurements, analyte: moved}), guideline
                )
                if other.flags != case.flags or (other.b12, other.serum) != (case.b12, case.serum):
                    continue
                assert {name: FACTS[name].compute(other) for name in names} == facts, analyte
                checked += 1
    assert checked > 1000
