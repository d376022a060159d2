"""The decision core: panels with one key are decided alike, and rules compare
values only with declared cut points (checked by recording every comparison)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import ClassVar

import pytest
from conftest import TODAY, canonical_measurement

from b12lab import engine
from b12lab.decision import DecisionCore, position
from b12lab.model import Context, Measurement, Panel
from b12lab.ranges import load_ranges
from b12lab.rules import RULES_BY_DOMAIN
from b12lab.rules.base import B12_INPUTS, RULES, Fired, Rule

RANGES = load_ranges()


class Recorded(float):
    """A value that notes every number it is compared with."""

    log: ClassVar[list[tuple[str, float]]] = []

    def __new__(cls, value: float, analyte: str):
        number = super().__new__(cls, value)
        number.analyte = analyte
        return number

    def _note(self, other):
        if isinstance(other, (int, float)):
            Recorded.log.append((self.analyte, float(other)))

    def __lt__(self, other):
        self._note(other)
        return float(self) < other

    def __le__(self, other):
        self._note(other)
        return float(self) <= other

    def __gt__(self, other):
        self._note(other)
        return float(self) > other

    def __ge__(self, other):
        self._note(other)
        return float(self) >= other

    def __eq__(self, other):
        self._note(other)
        return float(self) == other

    def __ne__(self, other):
        self._note(other)
        return float(self) != other

    __hash__ = float.__hash__


def _every_band_cut(guideline: str) -> dict[str, tuple[float, ...]]:
    """Each analyte's cut points over every sex, age and trimester band of the profile."""
    cuts: dict[str, set[float]] = {a: set() for a in RANGES.analytes}
    for sex in (None, "female", "male"):
        for age in (None, 0.5, 8, 15, 40, 70):
            for trimester in (None, 1, 2, 3):
                limits = RANGES.limits(sex, age, guideline, trimester)
                for analyte in RANGES.analytes:
                    cuts[analyte].update(limits.cut_points(analyte))
    return {a: tuple(sorted(c)) for a, c in cuts.items()}


def _panels(count: int, seed: int = 7):
    """Panels whose values sit at, just under and just over every cut point."""
    rng = random.Random(seed)
    cuts = {guideline: _every_band_cut(guideline) for guideline in ("who", "nice")}
    for _ in range(count):
        guideline = rng.choice(("who", "nice"))
        measurements = {}
        for analyte, spec in RANGES.analytes.items():
            if rng.random() < 0.35:
                continue
            # Zero is a cut point too, but no result the reader accepts is zero.
            points = tuple(p for p in cuts[guideline][analyte] if p > 0) or (
                spec.plausible_low + 1,
            )
            value = rng.choice(points) * rng.choice((0.97, 1.0, 1.03))
            censored = rng.choice((None, None, None, None, "<", ">"))
            lab = rng.random() < 0.15  # a message's own flag and range (HL7 OBX-8, FHIR)
            flag = rng.choice(("L", "N", "H")) if lab else None
            reference = rng.choice((None, "10-20")) if lab else None
            measurements[analyte] = canonical_measurement(
                RANGES, analyte, value, censored, flag, reference
            )
        date = TODAY - dt.timedelta(days=rng.randint(0, 400))
        start = rng.choice((None, date - dt.timedelta(days=rng.randint(-20, 200))))
        panel = Panel(
            measurements=measurements,
            date=date,
            sex=rng.choice((None, "female", "male")),
            age=rng.choice((None, 0.5, 8, 15, 40, 70)),
            context=Context(
                b12_therapy_start=start,
                alcohol_use=(alcohol := rng.choice(("current", "stopped", None, None)))
                == "current",
                alcohol_stopped=alcohol == "stopped",
                neuro_symptoms=rng.random() < 0.2,
                hypersegmented_neutrophils=rng.random() < 0.2,
                pregnancy_trimester=rng.choice((None, None, None, 1, 2, 3)),
            ),
        )
        yield guideline, panel


def _recording(panel: Panel) -> Panel:
    measurements = {
        a: replace(m, value=Recorded(m.value, a)) for a, m in panel.measurements.items()
    }
    return replace(panel, measurements=measurements)


def _undeclared_comparisons(panels) -> set[tuple[str, float]]:
    undeclared = set()
    for guideline, panel in panels:
        Recorded.log = []
        engine.evaluate(_recording(panel), RANGES, guideline=guideline, today=TODAY)
        limits = RANGES.limits(panel.sex, panel.age, guideline, panel.context.pregnancy_trimester)
        for analyte, number in Recorded.log:
            if number not in limits.cut_points(analyte):
                undeclared.add((analyte, number))
    return undeclared


def test_every_rule_compares_values_only_with_declared_cut_points():
    assert _undeclared_comparisons(_panels(600)) == set()


@pytest.fixture
def ferritin_twice_upper_rule():
    """A plausible new rule that compares ferritin with twice its upper limit."""
    domain = "ferritin"

    def very_high(case):
        ferritin = case.get("ferritin")
        high = case.limits.high("ferritin")
        if ferritin is not None and high is not None and ferritin.value > 2 * high:
            return Fired("very high", {})
        return None

    RULES["fer-very-high-test-only"] = Rule(
        "fer-very-high-test-only",
        domain,
        "info",
        "Ferritin above twice the upper limit",
        "ferritin above twice the upper limit",
        "Test rule.",
        (),
        (),
        frozenset({"ferritin"}) | B12_INPUTS,
        very_high,
    )

    original = RULES_BY_DOMAIN[domain]
    RULES_BY_DOMAIN[domain] = (*original, RULES["fer-very-high-test-only"])
    yield
    RULES_BY_DOMAIN[domain] = original
    del RULES["fer-very-high-test-only"]


def test_a_rule_comparing_with_an_undeclared_number_is_caught(ferritin_twice_upper_rule):
    undeclared = _undeclared_comparisons(_panels(300))
    assert undeclared
    assert {analyte for analyte, _ in undeclared} == {"ferritin"}


def test_panels_with_one_key_are_decided_alike():
    """Two panels with equal keys (values moved within their position) decide alike."""
    rng = random.Random(11)
    compared = 0
    for guideline, panel in _panels(400, seed=3):
        core = DecisionCore(RANGES, guideline, TODAY)
        limits = RANGES.limits(panel.sex, panel.age, guideline, panel.context.pregnancy_trimester)
        moved = {}
        for analyte, m in panel.measurements.items():
            if m.censored:
                moved[analyte] = m
                continue
            points = limits.cut_points(analyte)
            where = position(m.value, points)
            if where % 2:  # exactly on a cut point: it stays there
                moved[analyte] = m
                continue
            index = where // 2
            low = points[index - 1] if index > 0 else m.value - 5
            high = points[index] if index < len(points) else m.value + 5
            value = low + (high - low) * rng.uniform(0.05, 0.95)
            assert position(value, points) == where
            moved[analyte] = replace(m, value=value, input=str(value))
        other = replace(panel, measurements=moved)
        if core.key(other) != core.key(panel):
            continue  # a derived value moved with its inputs, or a quoted one moved
        first = core.decide(panel)
        fresh = DecisionCore(RANGES, guideline, TODAY)
        assert fresh.decide(other) == first
        compared += 1
    assert compared > 120


def test_context_and_guideline_scope_are_part_of_the_key():
    """Alcohol use stopped or current, and an age below the NICE profile's scope, change
    the decision: panels that differ only there never share one."""
    core = DecisionCore(RANGES, "nice", TODAY)
    platelets = Measurement(analyte="platelets", value=600, unit="10^9/L", input="600", decimals=0)
    b12 = Measurement(analyte="b12", value=100, unit="pmol/L", input="100", decimals=1)

    def panel(age: float, **context) -> Panel:
        return Panel(
            measurements={"platelets": platelets, "b12": b12},
            sex="female",
            age=age,
            context=Context(**context),
        )

    current, stopped = panel(40, alcohol_use=True), panel(40, alcohol_stopped=True)
    assert core.key(current) != core.key(stopped)
    assert "plt-high-alcohol-recovery" in core.decide(stopped).outcome.domain_findings[0]
    assert "plt-high-alcohol-recovery" not in core.decide(current).outcome.domain_findings[0]
    young, adult = panel(15), panel(17)
    assert core.key(young) != core.key(adult)
    assert any("age under 16" in w for w in core.decide(young).warnings)
    assert not any("age under 16" in w for w in core.decide(adult).warnings)


def test_a_value_the_laboratory_flagged_is_quoted_as_given():
    """Two values on one side of every cut point, each with the laboratory's flag N:
    the disagreement each report states quotes its own value."""
    core = DecisionCore(RANGES, "who", TODAY)

    def panel(text: str) -> Panel:
        value = float(text)
        measurement = Measurement(
            analyte="platelets", value=value, unit="10^9/L", input=text, decimals=0, lab_flag="N"
        )
        return Panel(measurements={"platelets": measurement}, sex="female", age=40)

    first, second = core.decide(panel("95")), core.decide(panel("96"))
    assert any("flags 95 as N" in w for w in first.warnings)
    assert any("flags 96 as N" in w for w in second.warnings)


def test_decisions_stay_bounded(monkeypatch):
    from b12lab import decision

    monkeypatch.setattr(decision, "MAX_DECISIONS", 5)
    core = DecisionCore(RANGES, "who", TODAY)
    for _, panel in _panels(60):
        core.decide(panel)
    assert len(core.decided) <= 5


def test_keys_that_decide_alike_share_one_decision():
    """A long export or a message keeps one decision object per distinct decision, however
    many keys it has: distinct B12 values that are all deficient decide alike."""
    core = DecisionCore(RANGES, "who", TODAY)
    decided = []
    for number in range(40):
        value = 60 + number  # every one well below the deficiency cut-off, each its own key
        text = f"<{value}"  # censored: keyed by its exact value
        b12 = Measurement(
            analyte="b12", value=value, unit="pmol/L", input=text, decimals=0, censored="<"
        )
        decided.append(core.decide(Panel(measurements={"b12": b12}, sex="female", age=40)))
    assert len(core.decided) == 40
    assert len({id(d) for d in core.decided.values()}) == len(set(core.decided.values())) == 1
    assert decided[0].outcome.b12_status == "deficient"


def test_evolve_is_replace_without_init():
    from b12lab.model import evolve

    for _, panel in _panels(30, seed=5):
        for measurement in panel.measurements.values():
            assert evolve(measurement, decimals=3, flag="low") == replace(
                measurement, decimals=3, flag="low"
            )
        before = dict(panel.measurements)
        assert evolve(panel, measurements={}) == replace(panel, measurements={})
        assert panel.measurements == before  # the original is untouched
    with pytest.raises(TypeError, match="no field"):
        evolve(panel, measurement={})
