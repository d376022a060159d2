"""No panel produces a pair of findings listed as contradictory.

Values are drawn around and exactly at every cut point the data file attaches
to each analyte (the positions the rules can tell apart), with every context
flag, therapy phase, pregnancy, age band and an optional pre-therapy panel.
"""

from __future__ import annotations

import datetime as dt
import itertools

from conftest import TODAY
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from b12lab.api import interpret_record
from b12lab.model import Context
from b12lab.ranges import load_ranges
from b12lab.reading.sources.panel_file import PatientRecord, RawPanel
from b12lab.rules import RULES
from b12lab.rules.base import CONTRADICTORY

RANGES = load_ranges()
LIMITS = [
    RANGES.limits(sex, age, guideline, trimester)
    for sex, age, guideline, trimester in itertools.product(
        (None, "female", "male"), (None, 8, 40), ("who", "nice"), (None, 2)
    )
]


def _candidates(analyte: str) -> list[str | None]:
    cuts = sorted({c for limits in LIMITS for c in limits.cut_points(analyte)})
    spec = RANGES.analytes[analyte]
    values = {spec.plausible_low + 0.01}
    for cut in cuts:
        values.update({cut * 0.97, cut, cut * 1.03})
    # In the canonical unit, written: a number alone may read apart in another unit.
    return [
        None,
        *(
            f"{v:.4f} {spec.canonical_unit}"
            for v in sorted(values)
            if spec.plausible_low <= v < spec.plausible_high
        ),
    ]


CANDIDATES = {analyte: _candidates(analyte) for analyte in RANGES.analytes}
panel_values = st.fixed_dictionaries(
    {analyte: st.sampled_from(values) for analyte, values in CANDIDATES.items()}
).map(lambda d: {k: v for k, v in d.items() if v is not None})


def test_every_listed_pair_names_catalogue_rules():
    for pair in CONTRADICTORY:
        assert len(pair) == 2
        assert pair <= set(RULES), pair


@settings(
    max_examples=800,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    latest=panel_values,
    earlier=st.one_of(st.none(), panel_values),
    sex=st.sampled_from([None, "female", "male"]),
    age=st.sampled_from([None, 0.25, 8, 40]),
    trimester=st.sampled_from([None, 1, 2]),
    # Each edge of the response (14), count recovery (28), rebound (42) and
    # persistence / hemoglobin recovery (56) windows, from both sides.
    start_days_ago=st.sampled_from([None, -3, 0, 2, 10, 13, 14, 28, 29, 42, 43, 56, 57, 60, 120]),
    earlier_days_ago=st.sampled_from([70, 20]),
    alcohol=st.sampled_from([None, "current", "stopped"]),
    flags=st.tuples(st.booleans(), st.booleans()),
    guideline=st.sampled_from(["who", "nice"]),
)
# The new pairs, each at its window's edge: a persisting cytopenia beside "consistent
# with B12"; b12-on-therapy beside b12-not-responding; the overload pattern beside
# fer-may-mask-iron-deficiency after repletion or past the persistence window.
@example(
    latest={"b12": "100", "platelets": "85", "anc": "1.1", "hemoglobin": "90"},
    earlier=None,
    sex="female",
    age=40,
    trimester=None,
    start_days_ago=29,
    earlier_days_ago=70,
    alcohol=None,
    flags=(False, False),
    guideline="who",
)
@example(
    latest={"platelets": "85", "anc": "1.1", "hemoglobin": "90", "b12": "517"},
    earlier={"b12": "81"},
    sex="female",
    age=40,
    trimester=None,
    start_days_ago=43,
    earlier_days_ago=70,
    alcohol=None,
    flags=(False, False),
    guideline="who",
)
@example(
    latest={"b12": "100"},
    earlier=None,
    sex=None,
    age=None,
    trimester=None,
    start_days_ago=14,
    earlier_days_ago=70,
    alcohol=None,
    flags=(False, False),
    guideline="who",
)
@example(
    latest={"ferritin": "900", "tsat": "60", "b12": "517"},
    earlier={"b12": "81"},
    sex="male",
    age=60,
    trimester=None,
    start_days_ago=43,
    earlier_days_ago=70,
    alcohol=None,
    flags=(False, False),
    guideline="who",
)
@example(
    latest={"ferritin": "900", "tsat": "60"},
    earlier={"b12": "81"},
    sex="male",
    age=60,
    trimester=None,
    start_days_ago=57,
    earlier_days_ago=70,
    alcohol=None,
    flags=(False, False),
    guideline="who",
)
def test_no_panel_produces_a_contradictory_pair(
    latest,
    earlier,
    sex,
    age,
    trimester,
    start_days_ago,
    earlier_days_ago,
    alcohol,
    flags,
    guideline,
):
    if sex == "male" or age in (0.25, 8):
        trimester = None
    neuro, hypersegmented = flags
    start = None if start_days_ago is None else TODAY - dt.timedelta(days=start_days_ago)
    panels = [RawPanel(TODAY, dict(latest))]
    if earlier is not None:
        panels.insert(0, RawPanel(TODAY - dt.timedelta(days=earlier_days_ago), dict(earlier)))
    record = PatientRecord(
        patient_id="PAIRS",
        sex=sex,
        age=age,
        context=Context(
            b12_therapy_start=start,
            alcohol_use=alcohol == "current",
            alcohol_stopped=alcohol == "stopped",
            neuro_symptoms=neuro,
            hypersegmented_neutrophils=hypersegmented,
            pregnancy_trimester=trimester,
        ),
        panels=panels,
    )
    report = interpret_record(record, guideline=guideline, ranges=RANGES, today=TODAY)
    ids = {f.id for f in report.findings}
    found = [sorted(pair) for pair in CONTRADICTORY if pair <= ids]
    assert not found, f"contradictory findings {found} for {latest} (earlier {earlier})"


# What a next step that asks for tests calls each analyte.
ASKED_AS = {
    "b12": ("serum B12", "Measure B12"),
    "folate": ("folate",),
    "mma": ("MMA", "methylmalonic"),
    "homocysteine": ("homocysteine",),
    "holotc": ("holotranscobalamin",),
    "ferritin": ("ferritin",),
    "tsat": ("transferrin saturation",),
    "crp": ("CRP",),
    "egfr": ("renal function", "eGFR"),
}
ASKING = ("Measure ", "Send ", "Check ")


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    latest=panel_values,
    earlier=st.one_of(st.none(), panel_values),
    start_days_ago=st.sampled_from([None, 10, 43, 60]),
    flags=st.tuples(st.booleans(), st.booleans()),
    guideline=st.sampled_from(["who", "nice"]),
)
def test_no_next_step_asks_for_a_test_the_panel_or_its_history_has(
    latest, earlier, start_days_ago, flags, guideline
):
    neuro, hypersegmented = flags
    start = None if start_days_ago is None else TODAY - dt.timedelta(days=start_days_ago)
    panels = [RawPanel(TODAY, dict(latest))]
    if earlier is not None:
        panels.insert(0, RawPanel(TODAY - dt.timedelta(days=70), dict(earlier)))
    record = PatientRecord(
        patient_id="STEPS",
        sex="female",
        age=40,
        context=Context(
            b12_therapy_start=start,
            neuro_symptoms=neuro,
            hypersegmented_neutrophils=hypersegmented,
        ),
        panels=panels,
    )
    report = interpret_record(record, guideline=guideline, ranges=RANGES, today=TODAY)
    given = {m.analyte for m in report.measurements} | set(earlier or ())
    for finding in report.findings:
        for step in finding.next_steps:
            if not step.startswith(ASKING) or step.startswith(("Check that", "Check adherence")):
                continue
            asked = step.split(":")[0].split(";")[0]
            for analyte in given & ASKED_AS.keys():
                for words in ASKED_AS[analyte]:
                    assert words not in asked, (finding.id, step, analyte)
